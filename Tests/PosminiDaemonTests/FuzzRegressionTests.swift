import Testing
import PosminiFuzzing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets' seeds and every input that once crashed one (Fuzz/Regressions) go through
/// the same harness as under libFuzzer: each must come back.
@Suite("Fuzz seeds and regressions")
struct FuzzRegressionTests {
    func files(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") && name != "README" { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    @Test("every seed and regression input of every target runs through its harness")
    func replay() throws {
        var ran = 0
        for (name, run) in FuzzHarness.targets {
            let inputs = files(packageRoot + "/Fuzz/Seeds/" + name) + files(packageRoot + "/Fuzz/Regressions/" + name)
            #expect(!files(packageRoot + "/Fuzz/Seeds/" + name).isEmpty, "\(name) has no seeds")
            for path in inputs {
                let bytes = readFile(path) ?? []
                bytes.withUnsafeBufferPointer { run($0) }
                ran += 1
            }
        }
        #expect(ran >= 20)
    }
}
