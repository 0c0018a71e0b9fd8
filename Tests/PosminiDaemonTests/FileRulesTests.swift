import Testing
import PosminiConfig
import PosminiProtocol
import PosminiDaemon
import ReaderIO
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Another user: nobody (the tests run as root).
private let otherUser: UInt32 = 65_534

/// Runs posminid with `arguments` (and `environment`), killed after `seconds` if it has not
/// ended by then: a refusal must end at once, so a run that is still going (started, or stuck
/// opening a FIFO) shows as `timedOut` instead of hanging the suite.
private func boundedRun(_ arguments: [String], environment: [String: String] = [:], directory: String,
                        seconds: Int = 15) -> (status: Int32, stderr: String, timedOut: Bool) {
    let err = directory + "/bounded.stderr"
    let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" }
    let words = ["timeout", "-s", "KILL", String(seconds), "env"] + assignments + [shellQuoted(posminidExecutable)] + arguments.map(shellQuoted)
    let status = (system(words.joined(separator: " ") + " </dev/null >/dev/null 2>\(shellQuoted(err))") >> 8) & 0xFF
    return (status, readText(err), status == 137 || status == 124)
}

private func ownerAndMode(_ path: String) -> (owner: UInt32, group: UInt32, mode: UInt32, type: UInt32)? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return (UInt32(info.st_uid), UInt32(info.st_gid), UInt32(info.st_mode) & 0o7777, UInt32(info.st_mode & S_IFMT))
}

extension ProcessSuites.DaemonTests {
    @Test("a state directory others can write (0777, 1777, 0770) or another user owns is refused at start, naming it, owner and mode; exit 2")
    func unsafeStateDirectory() throws {
        let directory = try temporaryDirectory()
        for (owner, mode) in [(UInt32(0), UInt32(0o777)), (0, 0o1777), (0, 0o770), (otherUser, 0o700)] {
            let state = directory + "/state-\(owner)-\(String(mode, radix: 8))"
            mkdir(state, 0o700)
            chown(state, owner, owner)
            chmod(state, mode_t(mode))
            let r = boundedRun(["--test-key", "--socket", directory + "/s.sock", "--state-directory", state], directory: directory)
            #expect(!r.timedOut && r.status == 2, "\(state): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("state directory \(state) is owned by uid \(owner)") && r.stderr.contains("refusing it"), "\(r.stderr)")
            #expect(r.stderr.contains("mode \(octal4(mode))"), "\(r.stderr)")
            #expect(FileBytes.entries(ofDirectory: state).isEmpty, "nothing written into \(state)")
        }
        // A link in the state directory's place is not followed either.
        let real = directory + "/real-state"
        mkdir(real, 0o700)
        symlink(real, directory + "/linked-state")
        let r = boundedRun(["--test-key", "--socket", directory + "/s.sock", "--state-directory", directory + "/linked-state"], directory: directory)
        #expect(!r.timedOut && r.status == 2 && r.stderr.contains("symbolic link"), "\(r.stderr)")
        #expect(FileBytes.entries(ofDirectory: real).isEmpty)
    }

    /// A provisioned key (and its counter) in `directory`: the daemon would start with it.
    func provisionedKey(_ directory: String) throws -> String {
        let ik = directory + "/ik"
        let made = try run(["provision", "--bdk", TestKeys.aesBDK, "--ikid", "A1B2C3D4E5F60718", "--out", ik, "--state-directory", directory])
        try #require(made.status == 0, "\(made.stderr)")
        return ik
    }

    @Test("a key file that is a FIFO is refused at once (no hang), one owned by another user is refused, a symbolic link to a good key is refused")
    func unsafeKeyFiles() throws {
        let directory = try temporaryDirectory()
        let ik = try provisionedKey(directory)
        func start(_ key: String) -> (status: Int32, stderr: String, timedOut: Bool) {
            boundedRun(["--key-file", key, "--socket", directory + "/s.sock", "--state-directory", directory], directory: directory)
        }
        let fifo = directory + "/fifo-ik"
        mkfifo(fifo, 0o600)
        var r = start(fifo)
        #expect(!r.timedOut && r.status == 2, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("key file \(fifo) is a FIFO (named pipe), not a regular file"), "\(r.stderr)")

        let foreign = directory + "/foreign-ik"
        write(try #require(readFile(ik)), to: foreign)
        chmod(foreign, 0o600)
        chown(foreign, otherUser, otherUser)
        r = start(foreign)
        #expect(!r.timedOut && r.status == 2, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("key file \(foreign) is owned by uid 65534 (nobody)") && r.stderr.contains("chown"), "\(r.stderr)")

        let link = directory + "/linked-ik"
        symlink(ik, link)
        r = start(link)
        #expect(!r.timedOut && r.status == 2, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("key file \(link) is a symbolic link"), "\(r.stderr)")

        let folder = directory + "/folder-ik"
        mkdir(folder, 0o700)
        r = start(folder)
        #expect(!r.timedOut && r.status == 2 && r.stderr.contains("is a directory, not a regular file"), "\(r.stderr)")
        // None of it gave away the key.
        let keyLine = readText(ik).split(separator: "\n").first { $0.hasPrefix("ik ") }.map(String.init) ?? "ik ="
        #expect(!r.stderr.contains(keyLine))
    }

    @Test("provision never replaces an existing key file or writes through a link at --out; the refusal names the file")
    func provisionKeepsKeys() throws {
        let directory = try temporaryDirectory()
        let ik = directory + "/ik"
        write(Array("scheme = aes128-dukpt\n# the reader's real key\n".utf8), to: ik)
        chmod(ik, 0o600)
        let before = readFile(ik)
        let r = try run(["provision", "--bdk", TestKeys.aesBDK, "--ikid", "0011223344556677", "--out", ik, "--state-directory", directory])
        #expect(r.status == 2 && r.stderr.contains("\(ik) exists: refusing to replace a key"), "\(r.stderr)")
        #expect(readFile(ik) == before)
        #expect(FileBytes.entries(ofDirectory: directory) == ["ik"], "no counter, no temporary file")
        // A dangling link at --out: what it points to is not created.
        let elsewhere = try temporaryDirectory() + "/through-link"
        symlink(elsewhere, directory + "/ik-link")
        let linked = try run(["provision", "--bdk", TestKeys.aesBDK, "--ikid", "0011223344556688", "--out", directory + "/ik-link", "--state-directory", directory])
        #expect(linked.status == 2 && linked.stderr.contains("ik-link exists: refusing to replace a key"), "\(linked.stderr)")
        #expect(ownerAndMode(elsewhere) == nil)
        #expect(Set(FileBytes.entries(ofDirectory: directory)) == ["ik", "ik-link"])
    }

    @Test("the socket the daemon binds itself is 0660 from the umask at bind() and in its group, set without following links")
    func socketModeAndGroup() throws {
        let daemon = try startDaemon(config: "socket_group = nogroup\n")
        defer { daemon.stop() }
        _ = try daemon.client()
        let info = try #require(ownerAndMode(daemon.socket))
        #expect(info.type == UInt32(S_IFSOCK))
        #expect(info.mode == 0o660)
        #expect(info.group == 65_534)
    }
}

extension ProcessSuites.DiagnoseTests {
    @Test("--report into a directory another user owns (0777, 1777, or private to them) or a link to one is refused before any check, naming it, its owner and mode; nothing is written; exit 2")
    func reportIntoForeignDirectory() throws {
        let t = try terminal(idle(seconds: 2.5))
        for mode in [UInt32(0o777), 0o1777, 0o700] {
            let ticket = t.directory + "/ticket-\(String(mode, radix: 8))"
            mkdir(ticket, 0o700)
            chown(ticket, otherUser, otherUser)
            chmod(ticket, mode_t(mode))
            let r = boundedRun(t.arguments + ["--no-swipe", "--report", ticket], environment: t.environment, directory: t.directory, seconds: 60)
            #expect(!r.timedOut && r.status == 2, "\(r.status) \(r.stderr)")
            #expect(r.stderr.contains("refusing to write the report into \(ticket): it is owned by uid 65534 (nobody) with mode \(octal4(mode))"), "\(r.stderr)")
            #expect(FileBytes.entries(ofDirectory: ticket).isEmpty, "\(FileBytes.entries(ofDirectory: ticket))")
        }
        // The caller's own directory, writable by others: refused too.
        let open = t.directory + "/open-ticket"
        mkdir(open, 0o700)
        chmod(open, 0o777)
        var r = boundedRun(t.arguments + ["--no-swipe", "--report", open], environment: t.environment, directory: t.directory, seconds: 60)
        #expect(r.status == 2 && r.stderr.contains("(writable by others)"), "\(r.stderr)")
        #expect(FileBytes.entries(ofDirectory: open).isEmpty)
        // A link planted at the report's name, to a directory of the caller's: not followed.
        let mine = t.directory + "/mine"
        mkdir(mine, 0o700)
        symlink(mine, t.directory + "/linked-ticket")
        r = boundedRun(t.arguments + ["--no-swipe", "--report", t.directory + "/linked-ticket"], environment: t.environment, directory: t.directory, seconds: 60)
        #expect(r.status == 2 && r.stderr.contains("symbolic link"), "\(r.stderr)")
        #expect(FileBytes.entries(ofDirectory: mine).isEmpty)
    }

    @Test("--report: a new directory is made with mode 700; under sudo the invoking user's own directory (SUDO_UID) is accepted")
    func reportDirectoryRules() throws {
        let t = try terminal(idle(seconds: 2.5))
        let fresh = t.directory + "/fresh"
        var r = boundedRun(t.arguments + ["--no-swipe", "--report", fresh], environment: t.environment, directory: t.directory, seconds: 60)
        #expect(r.status != 2 && !r.timedOut, "\(r.stderr)")
        #expect(ownerAndMode(fresh)?.mode == 0o700)
        #expect(ownerAndMode(fresh + "/report.json")?.mode == 0o644)
        let home = t.directory + "/technician-ticket"
        mkdir(home, 0o700)
        chown(home, otherUser, otherUser)
        r = boundedRun(t.arguments + ["--no-swipe", "--report", home], environment: t.environment.merging(["SUDO_UID": "65534"]) { $1 },
                       directory: t.directory, seconds: 60)
        #expect(r.status != 2 && !r.timedOut, "\(r.stderr)")
        #expect(!readText(home + "/report.json").isEmpty)
    }
}

/// A mode as four octal digits.
private func octal4(_ mode: UInt32) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
