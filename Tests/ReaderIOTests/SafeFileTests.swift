import Testing
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// The atomic writer against a directory another user can write (tests run as root; the other
/// user is nobody, 65534, through setpriv).
@Suite("safe file writes")
struct SafeFileTests {
    static let other: UInt32 = 65_534

    /// A fresh directory anyone may write, as /tmp/ticket made by someone else would be.
    func sharedDirectory() throws -> String {
        var template = Array("/tmp/posmini-safe-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let path = try #require(made.map { String(cString: $0) })
        chmod(path, 0o777)
        return path
    }

    /// Runs `script` (sh) as the other user, in `directory`; its exit status.
    @discardableResult
    func asOtherUser(_ script: String, in directory: String) -> Int32 {
        let command = "cd '\(directory)' && setpriv --reuid=\(Self.other) --regid=\(Self.other) --clear-groups sh -c '\(script)'"
        return (system(command) >> 8) & 0xFF
    }

    func lstatus(_ path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    func text(_ path: String) -> String {
        String(decoding: (try? FileBytes.read(path)) ?? [], as: UTF8.self)
    }

    /// The final path is a regular file of the writer's, with `mode` and `content`.
    func expectOwnFile(_ path: String, mode: UInt32, content: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let info = lstatus(path)
        #expect(info.map { $0.st_mode & S_IFMT } == S_IFREG, "\(path) is not a regular file", sourceLocation: sourceLocation)
        #expect(info.map { UInt32($0.st_uid) } == geteuid(), "\(path) is not the writer's", sourceLocation: sourceLocation)
        #expect(info.map { UInt32($0.st_mode) & 0o7777 } == mode, sourceLocation: sourceLocation)
        #expect(text(path) == content, sourceLocation: sourceLocation)
    }

    @Test("symbolic links another user planted at the final name and at temporary names (the old NAME.tmp-PID too) are not followed; the victim is untouched")
    func plantedLinks() throws {
        let directory = try sharedDirectory()
        let victim = try sharedDirectory() + "/victim"
        let fd = open(victim, O_WRONLY | O_CREAT, 0o600)
        _ = write(fd, "root's file", 11)
        close(fd)
        let pid = getpid()
        #expect(asOtherUser("ln -s \(victim) swipe.wav && ln -s \(victim) swipe.wav.tmp-\(pid) && ln -s \(victim) .swipe.wav.tmp-\(pid)", in: directory) == 0)
        try FileBytes.write(Array("card audio".utf8), to: directory + "/swipe.wav", mode: 0o600)
        #expect(text(victim) == "root's file")
        #expect(lstatus(victim).map { UInt32($0.st_mode) & 0o7777 } == 0o600)
        expectOwnFile(directory + "/swipe.wav", mode: 0o600, content: "card audio")
        // The planted temporaries are still the other user's links: nothing opened them.
        #expect(lstatus(directory + "/swipe.wav.tmp-\(pid)").map { $0.st_mode & S_IFMT } == S_IFLNK)
    }

    @Test("a file another user planted at the old temporary name (mode 666) is not written into or renamed into place")
    func plantedFile() throws {
        let directory = try sharedDirectory()
        let pid = getpid()
        #expect(asOtherUser("echo planted > bindings.tmp-\(pid) && chmod 666 bindings.tmp-\(pid)", in: directory) == 0)
        try FileBytes.write(Array("reader = one\n".utf8), to: directory + "/bindings", mode: 0o600)
        expectOwnFile(directory + "/bindings", mode: 0o600, content: "reader = one\n")
        let planted = directory + "/bindings.tmp-\(pid)"
        #expect(lstatus(planted).map { UInt32($0.st_uid) } == Self.other)
        #expect(text(planted) == "planted\n")
        // Nothing else left behind: only the final file and what was planted.
        #expect(Set(FileBytes.entries(ofDirectory: directory)) == ["bindings", "bindings.tmp-\(pid)"])
    }

    @Test("the mode is the one asked for, whatever the umask and whatever mode a replaced file had")
    func exactMode() throws {
        let directory = try sharedDirectory()
        #expect(asOtherUser("echo old > report.json && chmod 666 report.json", in: directory) == 0)
        let previous = umask(0o077)
        defer { umask(previous) }
        try FileBytes.write(Array("{}".utf8), to: directory + "/report.json", mode: 0o644)
        expectOwnFile(directory + "/report.json", mode: 0o644, content: "{}")
    }

    @Test("a directory that is a symbolic link is refused with an error naming it; nothing is written where it points")
    func linkedDirectory() throws {
        let real = try sharedDirectory()
        let link = try sharedDirectory() + "/ticket"
        symlink(real, link)
        let error = #expect(throws: FileError.self) {
            try FileBytes.write(Array("x".utf8), to: link + "/report.json", mode: 0o644)
        }
        #expect(error?.errno == ELOOP && error?.path == link && "\(error.map(String.init(describing:)) ?? "")".contains("symbolic link"))
        #expect(FileBytes.entries(ofDirectory: real).isEmpty)
    }

    @Test("replacing: false never replaces a file or a link, names the file in its error, and leaves no temporary file")
    func noReplace() throws {
        let directory = try sharedDirectory()
        let handle = try Directory(opening: directory)
        try handle.write(Array("first key".utf8), to: "ik", mode: 0o600, replacing: false)
        expectOwnFile(directory + "/ik", mode: 0o600, content: "first key")
        let error = #expect(throws: FileError.self) {
            try handle.write(Array("second key".utf8), to: "ik", mode: 0o600, replacing: false)
        }
        let message = error.map(String.init(describing:)) ?? ""
        #expect(error?.errno == EEXIST && message.contains(directory + "/ik") && message.contains("refusing to replace"), "\(message)")
        #expect(text(directory + "/ik") == "first key")
        // A dangling link: what it points to is not created.
        let elsewhere = try sharedDirectory() + "/made-through-link"
        symlink(elsewhere, directory + "/ik2")
        #expect(throws: FileError.self) { try handle.write(Array("k".utf8), to: "ik2", mode: 0o600, replacing: false) }
        #expect(lstatus(elsewhere) == nil)
        #expect(Set(FileBytes.entries(ofDirectory: directory)) == ["ik", "ik2"])
    }

    @Test("a FIFO opened for reading does not block, and fstat on the descriptor says what it is; a link is refused")
    func openedFile() throws {
        let directory = try sharedDirectory()
        mkfifo(directory + "/fifo", 0o600)
        let fifo = try OpenedFile(reading: directory + "/fifo")
        #expect(fifo.status.kind == .fifo)
        symlink(directory + "/fifo", directory + "/link")
        let error = #expect(throws: FileError.self) { _ = try OpenedFile(reading: directory + "/link") }
        #expect(error?.errno == ELOOP)
    }

    @Test("a directory's status comes from its descriptor: owner and mode of another user's 1777 directory")
    func directoryStatus() throws {
        let directory = try sharedDirectory()
        chown(directory, Self.other, Self.other)
        chmod(directory, 0o1777)
        let status = try Directory(opening: directory).status()
        #expect(status.kind == .directory && status.owner == Self.other && status.modeText == "1777")
        #expect(!status.isPrivate(to: [geteuid()]))
        #expect(!status.isPrivate(to: [Self.other]), "writable by others")
    }
}
