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
    guard let info = try? FileBytes.read("/proc/cpuinfo", limit: 1 << 20) else { return "unknown CPU" }
    for line in String(decoding: info, as: UTF8.self).split(separator: "\n") where line.hasPrefix("model name") {
        return String(line.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters()
    }
    return "unknown CPU"
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed())
    }
}

/// Splits `0..<count` into one slice per core, runs `work` on each in parallel, and returns
/// the slices' results in slice order.
func inParallel<Part: Sendable>(_ count: Int, _ work: @escaping @Sendable (Range<Int>) -> Part) async -> [Part] {
    let cores = processorCount()
    let per = (count + cores - 1) / cores
    return await withTaskGroup(of: (Int, Part).self) { group in
        for c in 0..<cores {
            group.addTask { (c, work((c * per)..<min(count, (c + 1) * per))) }
        }
        var parts: [(Int, Part)] = []
        for await part in group { parts.append(part) }
        return parts.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
