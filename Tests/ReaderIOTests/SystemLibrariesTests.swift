import Testing
import ReaderIO

@Suite("System libraries")
struct SystemLibrariesTests {
    @Test("alsa-lib reports a version and libudev opens a context")
    func linked() {
        let parts = SystemLibraries.alsaVersion.split(separator: ".")
        #expect(parts.count >= 2 && parts.allSatisfy { Int($0) != nil })
        #expect(SystemLibraries.udevAvailable)
    }
}
