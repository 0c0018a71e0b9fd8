import PosminiProtocol
import ArgumentParser
import PosminiClient
import PosminiDecrypt
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

@main
struct Posminictl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posminictl",
        abstract: "Talk to posminid: status, watch the readers, arm one for a card.",
        discussion: """
            Exit status: 0 when the command did what it was asked (arm: a card came), 1 when the \
            daemon answered with an error or an arm ended without a card, 64 for a usage error, \
            69 (EX_UNAVAILABLE) when the daemon cannot be reached: no socket, refused, or it closed \
            the connection or refused this client in its greeting (one line on standard error).
            """,
        version: PosminiProtocol.release,
        subcommands: [Status.self, Metrics.self, Watch.self, Arm.self, Simulate.self, Decrypt.self])

    /// Exit status when the daemon cannot be reached (sysexits.h EX_UNAVAILABLE).
    static let unavailable: Int32 = 69
}

struct Connection: ParsableArguments {
    @Option(help: "The daemon's socket.")
    var socket = "/run/posmini.sock"

    @Flag(help: "Print the daemon's messages as they are (JSON lines).")
    var json = false

    @Option(help: "Seconds to wait for a daemon that is starting (its socket missing or not yet listening); 0: fail at once.")
    var wait: Double = 0

    func validate() throws {
        guard wait >= 0, wait <= 300 else { throw ValidationError("--wait must be from 0 to 300 seconds") }
    }

    /// Connects, trying again every 50 ms while the socket is missing or refuses and `wait`
    /// has not passed.
    func connect() throws(ControlClient.Failure) -> ControlClient {
        let deadline = monotonicSeconds() + wait
        while true {
            do {
                return try ControlClient(path: socket)
            } catch where (error.code == ENOENT || error.code == ECONNREFUSED) && monotonicSeconds() < deadline {
                usleep(50_000)
            }
        }
    }

    /// Connects and reads the greeting (VERSION, READERS); returns the client and the readers.
    /// A daemon that cannot be reached (no socket, refused, closed, an ERROR greeting) is one
    /// line on standard error and exit status 69 (EX_UNAVAILABLE), not a usage error.
    func open() throws -> (ControlClient, [ReaderInfo]) {
        var readers: [ReaderInfo] = []
        do {
            let client = try connect()
            for _ in 0..<2 {
                guard let greeting = try client.nextReply(timeout: 5) else { unavailable("the daemon closed the connection") }
                switch greeting {
                case .error: unavailable(describeReply(greeting))
                case .readers(let list): readers = list
                default: break
                }
            }
            return (client, readers)
        } catch {
            unavailable(error.description)
        }
    }

    func unavailable(_ why: String) -> Never {
        StandardStreams.err("posminictl: \(why)")
        Posminictl.exit(withError: ExitCode(Posminictl.unavailable))
    }

    func show(_ message: JSONValue) { StandardStreams.out(json ? message.text : describeMessage(message)) }

    /// Connects, sends `request` and waits up to `timeout` seconds for the answer (none: exit 1).
    /// Returns what `pick` takes from the reply, unless --json; anything else is shown as it
    /// came, an ERROR with exit 1, and nil is returned.
    func answer<T>(_ request: Request, timeout: Double = 5, _ pick: (Reply) -> T? = { _ in nil as Never? }) throws -> T? {
        let (client, _) = try open()
        try client.send(request)
        guard let message = try client.next(timeout: timeout) else { throw ExitCode(1) }
        let reply = try? Reply.parse(message)
        if !json, let reply, let picked = pick(reply) { return picked }
        show(message)
        if case .error? = reply { throw ExitCode(1) }
        return nil
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Readers, armed state and counters.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let status = try connection.answer(Request.status, { if case .status(let s) = $0 { s } else { nil } }) else { return }
        for reader in status.readers { StandardStreams.out(describeReply(.reader(reader))) }
        if status.readers.isEmpty { StandardStreams.out("no readers") }
        StandardStreams.out(describeCounters(status))
        StandardStreams.out(describeEncryption(status.encryption))
    }
}

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the daemon's metrics in Prometheus's text format (docs/METRICS.md; no card data).")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let text = try connection.answer(Request.metrics, { if case .metrics(let t) = $0 { t } else { nil } }) else { return }
        StandardStreams.write(text, to: 1)
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print reader and swipe events as they happen (no card data).")
    @OptionGroup var connection: Connection

    func run() throws {
        let (client, readers) = try connection.open()
        // The readers as they are now, then what happens to them.
        if !connection.json {
            for reader in readers { StandardStreams.out(describeReply(.reader(reader))) }
            if readers.isEmpty { StandardStreams.out("no readers") }
        }
        try client.send(Request.watch(true))
        while let message = try client.next() {
            if !connection.json, case .watch? = try? Reply.parse(message) { continue }
            connection.show(message)
        }
    }
}

struct Arm: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Arm a reader and wait for the card (masked) or the failure.")
    @OptionGroup var connection: Connection

    @Option(help: "Seconds to wait (at most 120).")
    var timeout: Double = 120

    @Option(help: "The reader's id (needed when several are present).")
    var reader: String?

    @Option(help: "A reference echoed in the replies (an order number).")
    var reference: String?

    func run() throws {
        let (client, _) = try connection.open()
        try client.send(Request.arm(reader: reader, timeout: timeout, reference: reference))
        while let message = try client.next() {
            connection.show(message)
            switch try? Reply.parse(message) {
            case .card?: return
            case .armEnded?, .error?: throw ExitCode(1)
            default: continue
            }
        }
        throw ExitCode(1)
    }
}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Act on the simulated reader of a daemon in test mode (posminid --test-key --simulate).",
        discussion: """
            swipe plays a swipe now (--card visa, mc, amex, unionpay, loyalty, partial or noise; \
            without it, the next card in turn); remove pulls the reader out (an arm on it ends with \
            READER_REMOVED); insert plugs it in again; exhaust-key makes the key behave as used up \
            until the daemon restarts. Any other daemon refuses with not_permitted.
            """)
    @OptionGroup var connection: Connection

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case swipe, remove, insert
        case exhaustKey = "exhaust-key"
    }

    @Argument(help: "swipe, remove, insert or exhaust-key.")
    var action: Action

    @Option(help: "With swipe: visa, mc, amex, unionpay, loyalty, partial or noise.")
    var card: String?

    func validate() throws {
        if card != nil && action != .swipe { throw ValidationError("--card goes with swipe only") }
    }

    func run() throws {
        let request: SimulateAction = switch action {
        case .swipe: .swipe(card: card)
        case .remove: .remove
        case .insert: .insert
        case .exhaustKey: .exhaustKey
        }
        // Shown as it comes (SIMULATED, or the refusal).
        let _: Never? = try connection.answer(Request.simulate(request), timeout: 10)
    }
}

struct Decrypt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decrypt a CARD's tracks with a BDK, as a processor would (test keys only; prints clear data).",
        discussion: """
            Reads CARD messages (JSON lines, or a bare "encrypted" object) from FILE or standard input, \
            derives each card's key from its KSN, checks the MAC (AES DUKPT) and prints the tracks; \
            other messages are passed over, and each problem is named with its line. With --ksn and --data, \
            decrypts a raw TDES DUKPT cryptogram instead (a classic reader's encrypted field). \
            Published test BDKs: AES FEDCBA9876543210F1F1F1F1F1F1F1F1, TDES 0123456789ABCDEFFEDCBA9876543210.
            """)

    @Option(help: ArgumentHelp("Base derivation key, 32 hex digits, or - to read it from standard input (on the command line every user sees it in the process list: prefer --bdk-file or -).", valueName: "hex|-"))
    var bdk: String?

    @Option(help: ArgumentHelp("A file holding the base derivation key (32 hex digits on one line; keep it mode 600).", valueName: "path"))
    var bdkFile: String?

    @Option(help: "Raw TDES cryptogram: its KSN (20 hex digits).")
    var ksn: String?

    @Option(help: "Raw TDES cryptogram: the ciphertext in hex.")
    var data: String?

    @Argument(help: "A file holding the CARD JSON (default: standard input).")
    var file: String?

    func validate() throws {
        if (ksn == nil) != (data == nil) { throw ValidationError("--ksn and --data go together") }
        if ksn != nil && file != nil { throw ValidationError("give either a CARD file or --ksn and --data") }
        guard let source = BDKSource(bdk: bdk, bdkFile: bdkFile) else {
            throw ValidationError("give exactly one of --bdk-file PATH, --bdk - (standard input) and --bdk HEX")
        }
        if source == .standardInput && ksn == nil && file == nil {
            throw ValidationError("--bdk - reads the key from standard input: give the CARD as a FILE (or --ksn and --data)")
        }
    }

    func run() throws {
        // The key and the clear tracks: no core dump, no reading of this process's memory by others.
        if !ProcessProtection.forbidDumps() {
            StandardStreams.err("posminictl decrypt: could not make the process undumpable: a core dump could hold the key or card data")
        }
        guard let bdk = BDKSource(bdk: bdk, bdkFile: bdkFile) else { throw ValidationError("give exactly one of --bdk-file and --bdk") }
        if case .hex = bdk { StandardStreams.err(BDKSource.commandLineWarning("posminictl decrypt")) }
        let status: Int32
        if let ksn, let data {
            status = DecryptTool.raw(bdk: bdk, ksn: ksn, data: data, out: StandardStreams.out, err: StandardStreams.err)
        } else {
            let bytes: [UInt8]
            do {
                bytes = try FileBytes.read(file ?? "/dev/stdin", limit: 1 << 20)
            } catch {
                StandardStreams.err("posminictl decrypt: \(error)")
                throw ExitCode(1)
            }
            // Every CARD line: `posminictl arm --json` output can be piped whole.
            status = DecryptTool.cards(bdk: bdk, input: bytes, out: StandardStreams.out, err: StandardStreams.err)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
