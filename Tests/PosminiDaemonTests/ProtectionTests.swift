import PosminiDecrypt
import Testing
import PosminiConfig
import AudioFile
import Magstripe
import PosminiDaemon
import ReaderIO
import Secrets
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// No core dumps and no memory reading by others for the commands that hold audio, keys or
/// clear tracks; the BDK kept off the command line.
@Suite("process protection and BDK input")
struct ProtectionTests {
    @Test("ProcessProtection.forbidDumps makes the process not dumpable (PR_GET_DUMPABLE 0), in a process of its own")
    func helperClearsDumpable() async {
        await #expect(processExitsWith: .success) {
            guard ProcessProtection.isDumpable == true else { exit(2) }
            guard ProcessProtection.forbidDumps() else { exit(3) }
            exit(ProcessProtection.isDumpable == false ? 0 : 1)
        }
    }

    @Test("BDKSource: the options, and a file read into wiped memory with white space around the digits")
    func sources() throws {
        #expect(BDKSource(bdk: "-", bdkFile: nil) == .standardInput)
        #expect(BDKSource(bdk: TestKeys.aesBDK, bdkFile: nil) == .hex(TestKeys.aesBDK))
        #expect(BDKSource(bdk: nil, bdkFile: "/k") == .file("/k"))
        #expect(BDKSource(bdk: "-", bdkFile: "/k") == nil && BDKSource(bdk: nil, bdkFile: nil) == nil)
        var template = Array("/tmp/posminid-bdk-XXXXXX".utf8CString)
        let directory = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        let cases: [(String, String?)] = [
            ("\n  \(TestKeys.aesBDK)\r\n\n", nil),
            (TestKeys.aesBDK, nil),
            ("", "empty"),
            ("FEDCBA98", "expected"),
            (TestKeys.aesBDK + "Z", "an even number is needed"),
            (String(repeating: "0", count: 2_000), "more than 1024 bytes"),
        ]
        for (k, (text, refusal)) in cases.enumerated() {
            let path = directory + "/bdk\(k)"
            let f = try #require(fopen(path, "wb"))
            _ = Array(text.utf8).withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            chmod(path, 0o600)
            do throws(BDKSource.Failure) {
                let key = try BDKSource.file(path).read()
                #expect(refusal == nil, "\(k) read")
                let same = key.equals([0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1])
                #expect(same)
            } catch {
                #expect(refusal.map { error.description.contains($0) && error.description.contains(path) } == true, "\(k): \(error)")
            }
        }
        #expect(throws: BDKSource.Failure.self) { _ = try BDKSource.file(directory + "/none").read() }
    }

    @Test("a BDK file readable by group or others is refused with its mode named; a FIFO, a directory and a device are refused at once, without blocking")
    func keyFileRefusals() throws {
        var template = Array("/tmp/posminid-bdk-XXXXXX".utf8CString)
        let directory = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        let path = directory + "/bdk"
        let f = try #require(fopen(path, "wb"))
        _ = Array(TestKeys.aesBDK.utf8).withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
        func refusal(_ path: String) -> String? {
            do throws(BDKSource.Failure) { _ = try BDKSource.file(path).read(); return nil } catch { return error.description }
        }
        for (mode, named) in [(0o644 as mode_t, "mode 644"), (0o640, "mode 640"), (0o604, "mode 604"), (0o660, "mode 660")] {
            chmod(path, mode)
            let why = refusal(path)
            #expect(why?.contains(named) == true && why?.contains(path) == true && why?.contains("chmod 600") == true, "\(why ?? "read")")
        }
        // Its owner alone may read it: 600 and 400 read.
        for mode: mode_t in [0o600, 0o400] {
            chmod(path, mode)
            #expect(refusal(path) == nil, "mode \(String(mode, radix: 8)) refused")
        }
        // A FIFO with no writer: opening it for reading would block forever without O_NONBLOCK.
        let fifo = directory + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(refusal(fifo)?.contains("a FIFO") == true)
        #expect(refusal(directory)?.contains("a directory") == true)
        #expect(refusal("/dev/null")?.contains("a character device") == true)
    }
}

extension ProcessSuites {
    @Suite("undumpable commands and the BDK off the command line")
    struct ProtectedCommandTests: CommandTesting {
        @Test("posminid listen is not dumpable, seen from outside: run as an unprivileged user, its /proc/PID files belong to root")
        func listenNotDumpable() throws {
            let directory = try temporaryDirectory()
            chmod(directory, 0o755)
            let wav = directory + "/silence.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [[Float](repeating: 0, count: 3 * 44_100)])), to: wav)
            chmod(wav, 0o644)
            // A dumpable process's /proc/PID files (status, mem, environ) are owned by its user; the
            // kernel gives a non-dumpable one's to root. Root's own processes show nothing either
            // way: run as nobody then.
            let asRoot = geteuid() == 0
            let process = try Background(["listen", "--replay", wav], environment: [:], directory: directory,
                                         prefix: asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [])
            defer { process.stop() }
            #expect(Background.wait(seconds: 10) { readText(process.stderr).contains("capturing from") }, "\(readText(process.stderr))")
            #expect(readText("/proc/\(process.pid)/cmdline").contains("listen"))
            var info = stat()
            #expect(stat("/proc/\(process.pid)/status", &info) == 0)
            #expect(info.st_uid == 0, "/proc/\(process.pid)/status belongs to uid \(info.st_uid)")
            #expect(asRoot || getuid() != 0)
            // The control: a plain process of the same user (sleep) keeps its /proc/PID.
            if asRoot {
                let pidFile = directory + "/control.pid"
                _ = system("sh -c 'setpriv --reuid=65534 --regid=65534 --clear-groups sleep 5 & echo $! >\(pidFile)'")
                let pid = try #require(Int32(readText(pidFile).split(separator: "\n").first ?? ""))
                defer { kill(pid, SIGTERM) }
                // Past setpriv's change of user (which leaves it non-dumpable until sleep is executed).
                #expect(Background.wait(seconds: 5) { readText("/proc/\(pid)/cmdline").hasPrefix("sleep") })
                usleep(100_000)
                var plain = stat()
                #expect(stat("/proc/\(pid)/status", &plain) == 0 && plain.st_uid == 65_534, "the control's /proc/PID/status belongs to uid \(plain.st_uid)")
            }
        }

        func provision(_ arguments: [String], stdin: String? = nil, directory: String) -> Run {
            let input = stdin.map { directory + "/stdin-\($0.count)" }
            if let input, let stdin { write(Array(stdin.utf8), to: input) }
            let command = ([posminidExecutable, "provision"] + arguments).map(shellQuoted).joined(separator: " ")
            let status = system(command + " <'\(input ?? "/dev/null")' >'\(directory)/out' 2>'\(directory)/err'")
            return Run(status: (status >> 8) & 0xFF, stdout: readText(directory + "/out"), stderr: readText(directory + "/err"))
        }

        @Test("provision takes the BDK from --bdk-file or standard input (--bdk -), the same key as --bdk HEX, which warns")
        func provisionForms() throws {
            let directory = try temporaryDirectory()
            let keyFile = directory + "/bdk"
            write(Array((TestKeys.aesBDK + "\n").utf8), to: keyFile)
            chmod(keyFile, 0o600)
            func form(_ name: String, _ arguments: [String], stdin: String? = nil) throws -> (Run, String) {
                let state = directory + "/" + name
                mkdir(state, 0o700)
                let r = provision(arguments + ["--ikid", "FEDCBA0987654321", "--out", state + "/ik", "--state-directory", state],
                                  stdin: stdin, directory: state)
                return (r, readText(state + "/ik"))
            }
            let (hex, hexKey) = try form("hex", ["--bdk", TestKeys.aesBDK])
            #expect(hex.status == 0, "\(hex.stderr)")
            #expect(hex.stderr.contains("visible to every user in the process list") && hex.stderr.contains("--bdk-file"), "\(hex.stderr)")
            let (file, fileKey) = try form("file", ["--bdk-file", keyFile])
            #expect(file.status == 0, "\(file.stderr)")
            #expect(!file.stderr.contains("process list"))
            let (piped, pipedKey) = try form("stdin", ["--bdk", "-"], stdin: TestKeys.aesBDK + "\n")
            #expect(piped.status == 0, "\(piped.stderr)")
            #expect(!piped.stderr.contains("process list"))
            #expect(!hexKey.isEmpty && fileKey == hexKey && pipedKey == hexKey)
            for r in [hex, file, piped] { #expect(!r.stderr.contains(TestKeys.aesBDK) && !r.stdout.contains(TestKeys.aesBDK)) }
            // Refusals: a missing or empty file, nothing on standard input, both forms, neither.
            let (missing, _) = try form("missing", ["--bdk-file", directory + "/none"])
            #expect(missing.status == 2 && missing.stderr.contains("--bdk-file \(directory)/none: No such file"), "\(missing.stderr)")
            let (empty, _) = try form("empty", ["--bdk", "-"], stdin: "")
            #expect(empty.status == 2 && empty.stderr.contains("standard input") && empty.stderr.contains("empty"), "\(empty.stderr)")
            let (both, _) = try form("both", ["--bdk", TestKeys.aesBDK, "--bdk-file", keyFile])
            #expect(both.status != 0 && both.stderr.contains("exactly one of --bdk-file"), "\(both.stderr)")
            let (neither, _) = try form("neither", [])
            #expect(neither.status != 0 && neither.stderr.contains("exactly one of --bdk-file"), "\(neither.stderr)")
        }

        @Test("posminictl decrypt takes the BDK from --bdk-file or --bdk - (with the CARD then in a FILE); --bdk HEX warns")
        func decryptForms() throws {
            let directory = try temporaryDirectory()
            // A real ID TECH reader's TDES cryptogram under the published TDES test BDK.
            let data = "DA7F2A52BD3F6DD8B96C50FC39C7E6AF22F06ED1F033BE0FB23D6BD33DC5A1F808512F7AE18D47A60CC3F4559B1B093563BE7E07459072ABF8FAAB5338C6CC8815FF87797AE3A7BE"
            let keyFile = directory + "/bdk"
            write(Array((TestKeys.tdesBDK + "\n").utf8), to: keyFile)
            chmod(keyFile, 0o600)
            write(Array((TestKeys.tdesBDK + "\n").utf8), to: directory + "/stdin")
            func decrypt(_ arguments: [String]) -> Run {
                let command = ([posminictlExecutable, "decrypt"] + arguments).map(shellQuoted).joined(separator: " ")
                let status = system(command + " <'\(directory)/stdin' >'\(directory)/out' 2>'\(directory)/err'")
                return Run(status: (status >> 8) & 0xFF, stdout: readText(directory + "/out"), stderr: readText(directory + "/err"))
            }
            let raw = ["--ksn", "62994901190000000002", "--data", data]
            let track = "%B4266841088889999^BUSH JR/GEORGE W.MR^0809101100001100000000046000000?"
            let file = decrypt(["--bdk-file", keyFile] + raw)
            #expect(file.status == 0 && file.stdout.hasPrefix(track), "\(file.stdout) \(file.stderr)")
            #expect(!file.stderr.contains("process list"))
            let piped = decrypt(["--bdk", "-"] + raw)
            #expect(piped.status == 0 && piped.stdout.hasPrefix(track), "\(piped.stdout) \(piped.stderr)")
            let hex = decrypt(["--bdk", TestKeys.tdesBDK] + raw)
            #expect(hex.status == 0 && hex.stderr.contains("visible to every user in the process list"), "\(hex.stderr)")
            // Standard input cannot be both the key and the CARD.
            let clash = decrypt(["--bdk", "-"])
            #expect(clash.status != 0 && clash.stderr.contains("give the CARD as a FILE"), "\(clash.stderr)")
        }
    }
}
