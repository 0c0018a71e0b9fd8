import Testing
import ReaderIO
@testable import PosminiDaemon
@testable import PosminiDiagnose
import PosminiConfig
#if canImport(Glibc)
import Glibc
#endif

/// Paths are walked a component at a time: a symbolic link in a parent is followed only out of a
/// directory owned by root or the caller and writable by nobody else.
@Suite("Paths walked safely: links in parents")
struct PathWalkTests {
    struct Rig {
        var base: String
        /// A directory of the caller's, private: where links point.
        var real: String
        /// Unsafe parents holding a link `lnk` → `real`: one another user owns (when the tests
        /// run as root), one anybody may write.
        var unsafe: [String]
        /// A parent owned by the caller, mode 755, holding a link `lnk` → `real`.
        var safe: String
    }

    func rig() throws -> Rig {
        var template = Array("/tmp/posminid-walk-XXXXXX".utf8CString)
        let base = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        let real = base + "/real"
        mkdir(real, 0o700)
        var unsafe: [String] = []
        if geteuid() == 0 {
            let other = base + "/other"
            mkdir(other, 0o755)
            symlink(real, other + "/lnk")
            lchown(other + "/lnk", 65_534, 65_534)
            chown(other, 65_534, 65_534)
            unsafe.append(other)
        }
        let open = base + "/open"
        mkdir(open, 0o755)
        symlink(real, open + "/lnk")
        chmod(open, 0o1777)
        unsafe.append(open)
        let safe = base + "/safe"
        mkdir(safe, 0o755)
        symlink(real, safe + "/lnk")
        return Rig(base: base, real: real, unsafe: unsafe, safe: safe)
    }

    @Test("Directory: a link in a parent another user owns or anyone may write is refused, naming it; one in a parent of the caller's resolves; /var/run still works")
    func walk() throws {
        let r = try rig()
        for parent in r.unsafe {
            do {
                _ = try Directory(opening: parent + "/lnk/sub")
                Issue.record("\(parent)/lnk followed")
            } catch {
                #expect(error.description.contains("\(parent)/lnk") && error.description.contains("symbolic link in \(parent)"), "\(error)")
            }
            #expect(throws: FileError.self) { _ = try Directory.openOrCreate(parent + "/lnk/made", mode: 0o700) }
        }
        #expect(FileBytes.entries(ofDirectory: r.real).isEmpty, "nothing made through a refused link")
        // The caller's own parent: followed.
        let made = try Directory.openOrCreate(r.safe + "/lnk/made", mode: 0o700)
        #expect(made.created)
        #expect(FileBytes.entries(ofDirectory: r.real) == ["made"])
        // A relative link, and a chain of two.
        symlink("../safe/lnk", r.safe + "/again")
        #expect((try? Directory(opening: r.safe + "/again/made")) != nil)
        // The link itself as the last component is still never followed.
        #expect(throws: FileError.self) { _ = try Directory(opening: r.safe + "/lnk") }
        var info = stat()
        if lstat("/var/run", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK {
            #expect((try? Directory(opening: "/var/run/..")) != nil, "/var/run → /run is root's and must resolve")
            #expect((try? Directory(opening: "/var/run")) == nil, "the last component is not followed")
        }
        #expect((try? Directory(opening: "/")) != nil)
        #expect((try? Directory(opening: ".")) != nil)
    }

    @Test("the state directory, --report and --plot: a link planted in a parent is refused with its name; a root-owned one resolves")
    func rules() throws {
        let r = try rig()
        for parent in r.unsafe {
            let link = parent + "/lnk"
            #expect(throws: KeyStoreError.self) { _ = try FileRules.stateDirectory(link + "/state") }
            do { _ = try FileRules.stateDirectory(link + "/state") } catch { #expect(error.description.contains(link), "\(error)") }
            do { _ = try ReportFileRules.reportDirectory(link + "/ticket"); Issue.record("report through \(link)") } catch {
                #expect(error.message.contains(link) && error.message.contains("symbolic link"), "\(error.message)")
            }
            do { _ = try ReportFileRules.plotDirectory(link + "/plot.svg"); Issue.record("plot through \(link)") } catch {
                #expect(error.message.contains(link) && error.message.contains("symbolic link"), "\(error.message)")
            }
        }
        #expect(FileBytes.entries(ofDirectory: r.real).isEmpty, "nothing made through a planted link")
        // Through the caller's (root's, when run as root) own link: all three resolve.
        _ = try FileRules.stateDirectory(r.safe + "/lnk/state")
        _ = try ReportFileRules.reportDirectory(r.safe + "/lnk/ticket")
        let (plotDirectory, name) = try ReportFileRules.plotDirectory(r.safe + "/lnk/plot.svg")
        #expect(name == "plot.svg" && plotDirectory.path == r.safe + "/lnk")
        #expect(Set(FileBytes.entries(ofDirectory: r.real)) == ["state", "ticket"])
        // --plot into a directory others may write (as /tmp): refused, like --report.
        do { _ = try ReportFileRules.plotDirectory(r.base + "/open/plot.svg"); Issue.record("plot into a 1777 directory") } catch {
            #expect(error.message.contains("refusing to write the plot") && error.message.contains("writable by others"), "\(error.message)")
        }
    }
}
