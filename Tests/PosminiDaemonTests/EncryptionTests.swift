import PosminiDecrypt
import PosminiProtocol
import Testing
import PosminiConfig
import PosminiDaemon
import DUKPT
import Secrets
import TestSupport
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Encrypted card events end to end: real daemons, replayed swipes, keys on disk.
extension ProcessSuites.DaemonTests {
    static let pan = "4111111111111111"

    /// Arms and returns the reply that ends the arm (CARD or ERROR), or nil.
    func armOnce(_ daemon: Daemon, timeout: Double = 20) throws -> Reply? {
        let pos = try daemon.greeted()
        try pos.send(["cmd": "arm", "timeout_s": 60])
        guard let armed = try pos.nextReply(timeout: 5) else { return nil }
        guard armed.kind == .armed else { return armed }
        while let m = try pos.nextReply(timeout: timeout) {
            if m.kind == .card || m.kind == .error { return m }
        }
        return nil
    }

    func decrypted(_ card: JSONValue, bdk: String) throws -> [Int: String] {
        let cryptogram = try CryptogramJSON.cryptogram(try #require(card["encrypted"]))
        let tracks = try cryptogram.decrypt(bdk: try Hex.decodeSecret(bdk, lengths: [16]))
        var out: [Int: String] = [:]
        for t in tracks { out[t.number] = t.text.revealed() }
        return out
    }

    /// Starts posminid and waits for it to exit (it should refuse); kills it if it does not.
    func refusal(_ arguments: [String], directory: String) throws -> (refused: Bool, stderr: String) {
        let process = try Background(arguments + ["--socket", directory + "/refusal.sock", "--state-directory", directory],
                                     environment: [:], directory: directory)
        let exited = Background.wait(seconds: 10) { !process.running }
        if !exited { kill(process.pid, SIGKILL) }
        return (exited, readText(process.stderr))
    }

    @Test("CARD carries the AES DUKPT cryptogram: KSN, tracks, MAC; it decrypts to the swipe, in process and through posminictl decrypt")
    func encryptedCard() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let card = try #require(try armOnce(daemon))
        #expect(card.kind == .card, "\(card.text)")
        let encrypted = try #require(card["encrypted"])
        #expect(encrypted["scheme"] == "aes128-dukpt")
        #expect(card["test_key"] == true, "a card under the published test key says so")
        #expect(encrypted["ksn"] == "123456789012345600000001")
        #expect(encrypted["mac"]?.stringValue?.count == 32)
        #expect(encrypted["tracks"]?["1"]?.stringValue?.count == 2 * 80)  // 69 characters padded to 80 bytes
        #expect(!card.text.contains(Self.pan))
        #expect(try decrypted(card.json, bdk: TestKeys.aesBDK) == [1: Self.track1])
        // An altered cryptogram is refused by the MAC.
        var tampered = card.text
        let t1 = encrypted["tracks"]!["1"]!.stringValue!
        tampered = tampered.replacingOccurrences(t1, (t1.first == "0" ? "1" : "0") + t1.dropFirst())
        // posminictl decrypt: what a processor does, on a file and on stdin.
        write(Array((card.text + "\n").utf8), to: daemon.directory + "/card.json")
        write(Array((tampered + "\n").utf8), to: daemon.directory + "/tampered.json")
        let out = daemon.directory + "/decrypt.out", err = daemon.directory + "/decrypt.err"
        var status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.aesBDK) <\(shellQuoted(daemon.directory + "/card.json")) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status == 0)
        #expect(readText(out).contains("track 1: " + Self.track1), "\(readText(out)) \(readText(err))")
        #expect(readText(out).contains("MAC: ok"))
        #expect(readText(err).contains("clear card data"))
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.aesBDK) \(shellQuoted(daemon.directory + "/tampered.json")) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status != 0)
        #expect(readText(err).contains("MAC does not match") && !readText(out).contains(Self.pan), "\(readText(err))")
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.tdesBDK) \(shellQuoted(daemon.directory + "/card.json")) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status != 0 && !readText(out).contains(Self.pan))
        // Several lines: every CARD decrypts, other messages are passed over, and each problem is
        // named with its line (a MAC that is missing is not a MAC that does not match).
        let armed = #"{"class":"ARMED","reader":"replay","timeout_s":30}"#
        var noMAC = card.json
        if case .object(var fields) = noMAC, case .object(var e)? = fields["encrypted"] {
            e["mac"] = nil
            fields["encrypted"] = .object(e)
            noMAC = .object(fields)
        }
        write(Array(([armed, card.text, "", card.text].joined(separator: "\n") + "\n").utf8), to: daemon.directory + "/session.jsonl")
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.aesBDK) \(shellQuoted(daemon.directory + "/session.jsonl")) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status == 0, "\(readText(err))")
        #expect(readText(out).contains("line 2: track 1: " + Self.track1) && readText(out).contains("line 4: track 1: " + Self.track1),
                "\(readText(out))")
        write(Array(([card.text, "{not json", noMAC.text].joined(separator: "\n") + "\n").utf8), to: daemon.directory + "/bad.jsonl")
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.aesBDK) \(shellQuoted(daemon.directory + "/bad.jsonl")) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status >> 8 == 1)
        #expect(readText(err).contains("line 2 is not JSON"), "\(readText(err))")
        #expect(readText(err).contains("line 3: no MAC") && !readText(err).contains("does not match"), "\(readText(err))")
        #expect(readText(out).contains("line 1: track 1: " + Self.track1), "the good card still decrypts: \(readText(out))")
        // The status shows the key, its next counter, and that it is the test key.
        let c = try daemon.greeted()
        try c.send(["cmd": "status"])
        let reply = try #require(try c.nextReply(timeout: 5))
        #expect(reply["encryption"]?["next_counter"]?.numberValue == 2)
        #expect(reply["encryption"]?["test_key"] == true)
        #expect(reply["encryption"]?["exhausted"] == false)
        // The log warns about the test key, at start and for the card, and never holds the PAN.
        let log = readText(daemon.process.stderr)
        #expect(log.components(separatedBy: TestKeys.warning).count >= 3, "\(log)")
        #expect(!log.contains(Self.pan) && !log.contains("4111111111"))
    }

    @Test("scheme = tdes-dukpt: a TDES cryptogram with a 20-digit KSN and no MAC, readable with the TDES BDK")
    func tdesCard() throws {
        let daemon = try startDaemon(config: "scheme = tdes-dukpt\n")
        defer { daemon.stop() }
        let card = try #require(try armOnce(daemon))
        #expect(card.kind == .card, "\(card.text)")
        #expect(card["encrypted"]?["scheme"] == "tdes-dukpt")
        #expect(card["encrypted"]?["ksn"] == "FFFF9876543210E00001")
        #expect(card["encrypted"]?["mac"] == nil)
        #expect(try decrypted(card.json, bdk: TestKeys.tdesBDK) == [1: Self.track1])
    }

    @Test("posminictl decrypt reads a real ID TECH reader's TDES cryptogram; a wrong BDK gives no track text")
    func idTechCryptogram() throws {
        let directory = try temporaryDirectory()
        let data = "DA7F2A52BD3F6DD8B96C50FC39C7E6AF22F06ED1F033BE0FB23D6BD33DC5A1F808512F7AE18D47A60CC3F4559B1B093563BE7E07459072ABF8FAAB5338C6CC8815FF87797AE3A7BE"
        let out = directory + "/out", err = directory + "/err"
        var status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.tdesBDK) --ksn 62994901190000000002 --data \(data) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status == 0)
        #expect(readText(out).hasPrefix("%B4266841088889999^BUSH JR/GEORGE W.MR^0809101100001100000000046000000?"), "\(readText(out))")
        #expect(readText(err).contains("clear card data"))
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.aesBDK) --ksn 62994901190000000002 --data \(data) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(!readText(out).contains("4266841088889999"))
        status = system("\(shellQuoted(posminictlExecutable)) decrypt --bdk \(TestKeys.tdesBDK) --ksn 6299490119 --data \(data) >\(shellQuoted(out)) 2>\(shellQuoted(err))")
        #expect(status != 0 && readText(err).contains("KSN has 5 bytes; expected 10"), "\(readText(err))")
    }

    @Test("a crash between reserving the counter and publishing: nothing is published, and the next start uses a higher KSN")
    func crashBetweenPersistAndPublish() throws {
        let directory = try temporaryDirectory()
        let first = try startDaemon(extra: ["--test-crash-after-reserve"], directory: directory)
        let reply = try armOnce(first)
        #expect(reply == nil, "nothing may be published: \(reply?.text ?? "")")
        #expect(Background.wait(seconds: 10) { !first.process.running })
        #expect(readText(first.process.stderr).contains("test seam: exiting after reserving counter 1"))
        let counter = readText(directory + "/counter-1234567890123456")
        #expect(counter.contains("next = 00000002"), "\(counter)")
        // Restarted on the same state: counter 1 is never used again.
        let second = try startDaemon(directory: directory)
        defer { second.stop() }
        let card = try #require(try armOnce(second))
        #expect(card["encrypted"]?["ksn"] == "123456789012345600000002", "\(card.text)")
        #expect(try decrypted(card.json, bdk: TestKeys.aesBDK) == [1: Self.track1])
    }

    @Test("an exhausted key: arms end with ERROR key_exhausted and the status says so")
    func exhaustedKey() throws {
        let directory = try temporaryDirectory()
        let id = try Hex.decode(TestKeys.aesIKID)
        write(Array(CounterStore.render(keyID: id, next: nil).utf8), to: CounterStore.path(directory: directory, keyID: id))
        chmod(CounterStore.path(directory: directory, keyID: id), 0o600)
        let daemon = try startDaemon(directory: directory)
        defer { daemon.stop() }
        let reply = try #require(try armOnce(daemon))
        #expect(reply.kind == .error && reply["code"] == "key_exhausted", "\(reply.text)")
        let c = try daemon.greeted()
        try c.send(["cmd": "status"])
        #expect(try c.nextReply(timeout: 5)?["encryption"]?["exhausted"] == true)
        // The last counter value still works, then the key is exhausted at the swipe.
        write(Array(CounterStore.render(keyID: id, next: AESDUKPT.lastCounter).utf8), to: CounterStore.path(directory: directory, keyID: id))
        daemon.stop()
        let again = try startDaemon(directory: directory)
        defer { again.stop() }
        let card = try #require(try armOnce(again))
        #expect(card["encrypted"]?["ksn"] == "1234567890123456FFFF0000", "\(card.text)")
        #expect(readText(CounterStore.path(directory: directory, keyID: id)).contains("next = exhausted"))
    }

    @Test("provision writes a 600 key file and its counter; the daemon reads with it; bad key files and counters are refused")
    func provisionedKey() throws {
        let directory = try temporaryDirectory()
        let ik = directory + "/ik"
        let made = try run(["provision", "--bdk", TestKeys.aesBDK, "--ikid", "FEDCBA0987654321", "--out", ik, "--state-directory", directory])
        #expect(made.status == 0, "\(made.stderr)")
        let mode = try #require(try FileBytes.permissions(ik)?.mode)
        #expect(mode == 0o600)
        let counterPath = directory + "/counter-FEDCBA0987654321"
        #expect(readText(counterPath).contains("next = 00000001"))
        #expect(!readText(ik).isEmpty && !made.stderr.contains(readText(ik)))
        // A key ID is provisioned once.
        let twice = try run(["provision", "--bdk", TestKeys.aesBDK, "--ikid", "FEDCBA0987654321", "--out", directory + "/ik2", "--state-directory", directory])
        #expect(twice.status == 2 && twice.stderr.contains("already has a counter"), "\(twice.stderr)")
        let badHex = try run(["provision", "--bdk", "XYZ", "--ikid", "FEDCBA0987654321", "--out", directory + "/ik3", "--state-directory", directory])
        #expect(badHex.status == 2 && badHex.stderr.contains("--bdk"), "\(badHex.stderr)")

        let daemon = try startDaemon(extra: ["--key-file", ik], testKey: false, directory: directory)
        let card = try #require(try armOnce(daemon))
        daemon.stop()
        #expect(card["encrypted"]?["ksn"] == "FEDCBA098765432100000001", "\(card.text)")
        #expect(card["test_key"] == false, "a provisioned key is not the test key")
        #expect(try decrypted(card.json, bdk: TestKeys.aesBDK) == [1: Self.track1])
        #expect(!readText(daemon.process.stderr).contains("TEST KEY"))
        #expect(readText(counterPath).contains("next = 00000002"))

        // The same key as a systemd credential ($CREDENTIALS_DIRECTORY/posminid.ik), no --key-file.
        let credentials = directory + "/credentials"
        mkdir(credentials, 0o700)
        write(Array(readText(ik).utf8), to: credentials + "/posminid.ik")
        chmod(credentials + "/posminid.ik", 0o400)
        let fromCredential = try startDaemon(environment: ["CREDENTIALS_DIRECTORY": credentials], testKey: false, directory: directory)
        let second = try #require(try armOnce(fromCredential))
        fromCredential.stop()
        #expect(second["encrypted"]?["ksn"] == "FEDCBA098765432100000002", "\(second.text) \(readText(fromCredential.process.stderr))")
        #expect(readText(fromCredential.process.stderr).contains("credentials/posminid.ik"))

        // Readable by others: refused, with the fix.
        chmod(ik, 0o644)
        var r = try refusal(["--key-file", ik], directory: directory)
        #expect(r.refused && r.stderr.contains("readable or writable by group or others") && r.stderr.contains("chmod 600"), "\(r.stderr)")
        chmod(ik, 0o600)
        // Corrupt key file.
        let corrupt = directory + "/corrupt-ik"
        write(Array("scheme = aes128-dukpt\nikid = FEDCBA0987654321\nik = 1273671EA26AC29AFA4D10841276\n".utf8), to: corrupt)
        chmod(corrupt, 0o600)
        r = try refusal(["--key-file", corrupt], directory: directory)
        #expect(r.refused && r.stderr.contains("corrupt-ik:3: ik has 28 hex digits"), "\(r.stderr)")
        // Scheme mismatch between configuration and key.
        write(Array("scheme = tdes-dukpt\n".utf8), to: directory + "/tdes.conf")
        r = try refusal(["--key-file", ik, "--config", directory + "/tdes.conf"], directory: directory)
        #expect(r.refused && r.stderr.contains("scheme = tdes-dukpt"), "\(r.stderr)")
        // Truncated counter.
        let saved = readText(counterPath)
        write(Array(saved.utf8.prefix(saved.utf8.count - 12)), to: counterPath)
        r = try refusal(["--key-file", ik], directory: directory)
        #expect(r.refused && r.stderr.contains("is corrupt"), "\(r.stderr)")
        // A counter that belongs to another key.
        write(Array(CounterStore.render(keyID: try Hex.decode("1234567890123456"), next: 9).utf8), to: counterPath)
        r = try refusal(["--key-file", ik], directory: directory)
        #expect(r.refused && r.stderr.contains("belongs to key 1234567890123456"), "\(r.stderr)")
        // A vanished counter: never restarted from 1.
        unlink(counterPath)
        r = try refusal(["--key-file", ik], directory: directory)
        #expect(r.refused && r.stderr.contains("is missing") && r.stderr.contains("provision a new key"), "\(r.stderr)")
        #expect(try FileBytes.permissions(counterPath) == nil)
    }

    @Test("a session at debug log level: after a card is published, the PAN and the track's secret part are in no output, no state file and nowhere in the daemon's writable memory; the process is not dumpable")
    func noClearDataInMemory() throws {
        let daemon = try startDaemon(extra: ["--log-level", "debug"])
        defer { daemon.stop() }
        let card = try #require(try armOnce(daemon))
        #expect(card.kind == .card)
        usleep(300_000)
        // The discretionary data of the test card's Track 1 (masked in the CARD) and the PAN.
        let secrets = [Self.pan, "000000000000000123456", "2812101000000000000000123456"]
        let log = readText(daemon.process.stderr) + readText(daemon.process.stdout)
        #expect(log.contains("DEBUG"), "the session ran at debug level")
        for secret in secrets { #expect(!log.contains(secret), "\(secret) in the output") }
        #expect(!card.text.contains(Self.pan) && !card.text.contains("000000000000000123456"))
        let files = FileBytes.entries(ofDirectory: daemon.directory)
        #expect(files.contains { $0.hasPrefix("counter-") })
        for name in files where !name.hasPrefix(".") && name != "bg.stdout" && name != "bg.stderr" {
            let bytes = readFile(daemon.directory + "/" + name) ?? []
            for secret in secrets { #expect(occurrences(of: Array(secret.utf8), in: bytes, count: bytes.count) == 0, "\(secret) in \(name)") }
        }
        #expect(readText("/proc/\(daemon.process.pid)/status").contains("Name:\tposminid"))
        guard geteuid() == 0 else {
            // Unprivileged: an undumpable process's memory cannot be opened at all.
            #expect(open("/proc/\(daemon.process.pid)/mem", O_RDONLY) < 0)
            return
        }
        let regions = readText("/proc/\(daemon.process.pid)/maps").split(separator: "\n").compactMap { line -> (UInt64, UInt64)? in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2, f[1].hasPrefix("rw") else { return nil }
            let range = f[0].split(separator: "-")
            guard range.count == 2, let a = UInt64(range[0], radix: 16), let b = UInt64(range[1], radix: 16) else { return nil }
            // Not the daemon's data: AddressSanitizer's shadow (terabytes, reserved, when the
            // daemon is built with it, as `make test-sanitize` does).
            guard b - a < 1 << 36 else { return nil }
            return (a, b)
        }
        #expect(!regions.isEmpty)
        let fd = open("/proc/\(daemon.process.pid)/mem", O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let needle = Array(Self.pan.utf8)
        let control = Array(daemon.socket.utf8)  // surely in memory: proves the scan reads it
        let discretionary = Array("000000000000000123456".utf8)
        var foundPAN = 0, foundControl = 0, foundSecret = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for (start, end) in regions {
            var offset = start
            while offset < end {
                let n = min(UInt64(buffer.count), end - offset)
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(n), off_t(Int64(bitPattern: offset))) }
                if got > 0 {
                    foundPAN += occurrences(of: needle, in: buffer, count: got)
                    foundSecret += occurrences(of: discretionary, in: buffer, count: got)
                    foundControl += occurrences(of: control, in: buffer, count: got)
                }
                offset += n  // the PAN straddling a 1 MiB boundary would be missed; the control shows reads work
            }
        }
        #expect(foundControl > 0)
        #expect(foundPAN == 0, "the PAN is in the daemon's memory \(foundPAN) time(s)")
        #expect(foundSecret == 0, "the discretionary data is in the daemon's memory \(foundSecret) time(s)")
    }

    func occurrences(of needle: [UInt8], in hay: [UInt8], count: Int) -> Int {
        guard count >= needle.count else { return 0 }
        var found = 0
        hay.withUnsafeBufferPointer { h in
            var i = 0
            while i <= count - needle.count {
                if h[i] == needle[0] {
                    var j = 1
                    while j < needle.count && h[i + j] == needle[j] { j += 1 }
                    if j == needle.count { found += 1 }
                }
                i += 1
            }
        }
        return found
    }
}
