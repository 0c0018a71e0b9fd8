import Testing
import PosminiFuzzing
import TestSupport
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets' seeds and every input that once crashed one (Fuzz/Regressions) go through
/// the same harness as under libFuzzer: each must come back.
@Suite("Fuzz seeds and regressions")
struct FuzzRegressionTests {
    func files(_ directory: String) -> [String] {
        FileBytes.entries(ofDirectory: directory).filter { !$0.hasPrefix(".") && $0 != "README" }.sorted().map { directory + "/" + $0 }
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
