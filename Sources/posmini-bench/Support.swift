import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

func fmt(_ x: Double, _ d: Int = 2) -> String {
    var m = 1.0
    for _ in 0..<d { m *= 10 }
    return String((x * m).rounded() / m)
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func processorCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

/// A whole file (the benchmark's diagnostics read recordings).
func readAll(_ path: String) -> [UInt8] {
    do {
        return try FileBytes.read(path)
    } catch {
        fatalError("cannot read \(error)")
    }
}

/// The CPU this ran on, for the report's header.
func cpuModel() -> String {
    guard let f = fopen("/proc/cpuinfo", "r") else { return "unknown CPU" }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(cString: line)
        if text.hasPrefix("model name") {
            return String(text.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters()
        }
    }
    return "unknown CPU"
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed())
    }
}
