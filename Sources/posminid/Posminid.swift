import PosminiDecrypt
import PosminiProtocol
import ArgumentParser
import PosminiDaemon
import PosminiDiagnose
import PosminiTools
import PosminiConfig
import ReaderIO

@main
struct Posminid: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posminid",
        abstract: "Audio-jack magnetic-stripe reader daemon.",
        discussion: """
            Without a subcommand, runs the daemon in the foreground (as systemd starts it): reader \
            sessions and the Unix-socket server (see docs/PROTOCOL.md). Readers are the sound cards \
            that the udev rules mark POSMINI_READER=1 (noticed when plugged), the cards named by \
            device lines or --device (captured while their jack holds a plug) and other configured \
            ALSA devices. SIGTERM stops it gracefully; SIGHUP reloads the configuration.
            """,
        version: PosminiProtocol.release,
        subcommands: [Run.self, Decode.self, Listen.self, Provision.self, Diagnose.self],
        defaultSubcommand: Run.self)

    /// `posminid --diagnose …` is `posminid diagnose …` (the technician's spelling).
    static func main() async {
        // Every subcommand handles audio (card data), keys or clear tracks: none leaves a core
        // dump or lets another user's process read its memory (the daemon checks again, and logs).
        if !ProcessProtection.forbidDumps() {
            StandardStreams.err("posminid: could not make the process undumpable: a core dump could hold card data or keys")
        }
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let k = arguments.firstIndex(of: "--diagnose") {
            arguments.remove(at: k)
            arguments.insert("diagnose", at: 0)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon in the foreground (the default).")

    @Option(help: "Configuration file (default /etc/posminid/posminid.conf; built-in defaults when that is absent).")
    var config: String?

    @Option(help: "Socket path (default /run/posmini.sock, or the configuration's).")
    var socket: String?

    @Option(name: .customLong("device"), help: "An ALSA capture device to read as a reader (repeatable); one naming a card (hw:CARD=PCH,DEV=0) is followed by its jack.")
    var devices: [String] = []

    @Option(name: .customLong("replay"), help: "A WAV recording (8000-192000 Hz) played in real time as a reader (repeatable); one that cannot be played stops the daemon at start (exit 2).")
    var replays: [String] = []

    @Flag(help: "Play --replay recordings as fast as they decode (soak tests) instead of in real time.")
    var replayFast = false

    @Option(help: "Play each --replay recording this many times over.")
    var replayRepeat = 1

    @Flag(help: "Hold --replay recordings at their start until a client arms a reader (scripted tests and demos: no swipe is played before the POS app is ready).")
    var replayHold = false

    @Flag(help: ArgumentHelp("Test seam: each --replay recording advances only while its reader is armed.", visibility: .private))
    var replayWhileArmed = false

    @Option(help: ArgumentHelp("Test seam: readers found through udev play this recording, paced, instead of opening ALSA.", visibility: .private))
    var testUdevReplay: String?

    @Option(help: ArgumentHelp("Test seam: the first udev replay stops for good at this second (a reader pulled out mid-swipe).", visibility: .private))
    var testUdevReplayStopAt: Double?

    @Flag(help: ArgumentHelp("Test seam: exit right after reserving a transaction counter, before publishing the card.", visibility: .private))
    var testCrashAfterReserve = false

    @Flag(help: ArgumentHelp("Test seam: watchers' SWIPE events carry decided_at (the stream position, in samples, where the swipe was decided).", visibility: .private))
    var exposeDecidedAt = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(name: [.customLong("state-directory"), .customLong("state-dir")],
            help: "State directory: DUKPT counter, reader bindings (default $STATE_DIRECTORY, else /var/lib/posminid).")
    var stateDirectory: String?

    @Option(help: "Initial-key file (default: the systemd credential posminid.ik, else /etc/posminid/ik).")
    var keyFile: String?

    @Flag(help: "Encrypt under the published test key (demonstrations and tests; never real cards).")
    var testKey = false

    @Flag(help: "Test mode for integrators (with --test-key only): a simulated reader, 'simulator', that plays the next test card (visa, mc, amex, unionpay in turn) when a client arms it; posminictl simulate swipes, removes and inserts it. --replay recordings are its swipes instead of the cards; --replay-fast plays them at once.")
    var simulate = false

    @Flag(help: "With --simulate: no swipe when a client arms, only on posminictl simulate swipe.")
    var simulateManual = false

    func run() async throws {
        var options = DaemonOptions()
        if let config {
            options.configPath = config
            options.configRequired = true
        }
        options.socketPath = socket
        options.devices = devices
        options.replays = replays
        options.replayFast = replayFast
        options.replayRepeat = max(1, replayRepeat)
        options.replayHold = replayHold
        options.replayWhileArmed = replayWhileArmed
        options.exposeDecidedAt = exposeDecidedAt
        options.udevReplay = testUdevReplay
        options.udevReplayStopAt = testUdevReplayStopAt
        options.crashAfterReserve = testCrashAfterReserve
        options.logLevel = logLevel
        options.stateDirectory = stateDirectory
        options.testKey = testKey
        options.keyFile = keyFile
        options.simulate = simulate || simulateManual
        options.simulateManual = simulateManual
        let status = await Daemon.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode swipes in WAV recordings.",
        discussion: """
            Prints one result per swipe: JSON lines with --json, text otherwise. Clear track data \
            appears only with --reveal. Exit status: 0 when at least one track read, 1 when none, \
            2 when a file could not be read.
            """)

    @OptionGroup var output: SwipeOutput

    @Argument(help: "WAV files (16/24/32-bit integer or 32-bit float, mono or stereo).")
    var files: [String]

    func run() throws {
        let tool = DecodeTool(json: output.json, reveal: output.reveal)
        let status = tool.run(files, out: StandardStreams.out, err: StandardStreams.err)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture from a reader (or replay a recording) and print each swipe as it ends.",
        discussion: """
            Opens one ALSA capture device by name (hw:CARD=…,DEV=0, plughw:…, default, pulse, or any \
            name your ALSA configuration defines) and decodes it live, or replays a recording paced \
            in real time like a device (--fast: as fast as it decodes). Stops on Ctrl-C, after \
            --seconds, or after --swipes. Exit status: 0 when it stopped as asked or the recording \
            ended, 1 when the device went away or failed, 2 when it could not be opened.
            """)

    @Option(name: .shortAndLong, help: "ALSA capture device name.")
    var device: String?

    @Option(help: "A WAV recording (or raw samples with --raw-format) to play instead of a device.")
    var replay: String?

    @Flag(help: "Replay as fast as the decoder takes it instead of in real time.")
    var fast = false

    @Option(help: "The replay file is headerless samples in this encoding: S16_LE, S24_LE, S32_LE, FLOAT_LE.")
    var rawFormat: String?

    @Option(help: "Sample rate of a raw replay file (8000-192000 Hz).")
    var rawRate = 44_100

    @Option(help: "Channels of a raw replay file.")
    var rawChannels = 1

    @Option(help: "Sample rate to ask the device for, 8000-192000 Hz (the nearest it offers is used; outside that range it is refused).")
    var rate = 44_100

    @Option(help: "Stop after this many seconds.")
    var seconds: Double?

    @Option(help: "Stop after this many swipes.")
    var swipes: Int?

    @Option(help: "SCHED_FIFO priority for the capture thread (needs CAP_SYS_NICE).")
    var realtime: Int32?

    @OptionGroup var output: SwipeOutput

    func validate() throws {
        guard (device == nil) != (replay == nil) else {
            throw ValidationError("give exactly one of --device NAME and --replay FILE")
        }
        if let rawFormat, CaptureFormat(rawValue: rawFormat) == nil {
            throw ValidationError("unknown raw format '\(rawFormat)': use S16_LE, S24_LE, S32_LE or FLOAT_LE")
        }
    }

    func run() throws {
        let input: ListenTool.Input
        if let device {
            input = .device(device)
        } else if let replay, let rawFormat, let format = CaptureFormat(rawValue: rawFormat) {
            input = .raw(path: replay, rate: rawRate, channels: rawChannels, format: format, paced: !fast)
        } else {
            input = .file(path: replay!, paced: !fast)
        }
        var tool = ListenTool(input: input)
        tool.json = output.json
        tool.reveal = output.reveal
        tool.rate = rate
        tool.seconds = seconds
        tool.swipes = swipes
        tool.realTimePriority = realtime
        InterruptSignals.install()
        let status = tool.run(out: StandardStreams.out, err: StandardStreams.err)
        if status != 0 { throw ExitCode(status) }
    }
}

/// How swipes are printed, for `decode` and `listen`.
struct SwipeOutput: ParsableArguments {
    @Flag(help: "One JSON object per swipe, one per line.")
    var json = false

    @Flag(help: "Also print clear track data (test cards only; warns on stderr).")
    var reveal = false
}

struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a terminal's reader, device and audio path (also: posminid --diagnose).",
        discussion: """
            The technician's compatibility check, in the order a person would go: the reader and \
            its jack, permissions, the capture device and the formats and rates it offers (and the \
            swipe speed that rate allows), the compatibility list, the mixer (capture switch and \
            volume, input source, sound processing, mic boost; --fix sets them), two seconds of \
            the idle signal (DC offset, noise floor, mains hum, clipping, dropouts), and a live \
            swipe of a test card (level, signal to noise, speed, bit timing, which checks passed). \
            Each check prints PASS, WARN, FAIL or N/A with its value and, when not PASS, what to do; \
            then a verdict: compatible, compatible with changes, not compatible. While posminid \
            runs, it is asked to let go of the device for the check and takes it back after. \
            Exit status: 0 everything passed, 1 something needs attention, 2 the check could not run.
            """)

    @Option(name: .shortAndLong, help: "The ALSA capture device to check (default: the configured or udev-marked reader).")
    var device: String?

    @Flag(help: "Print the report as one JSON document (for fleet tools).")
    var json = false

    @Option(help: "Write a picture of the swipe (SVG): waveform, transitions, bit cells, masked characters, speed.")
    var plot: String?

    @Option(help: "Write a bundle for the service provider into this directory: the report, the plot, versions, devices, mixer settings.")
    var report: String?

    @Flag(help: "With --report: include the swipe's raw audio (it encodes the card: test cards only).")
    var includeAudio = false

    @Option(help: "Seconds to wait for the test swipe.")
    var swipeTimeout: Double = 30

    @Flag(help: "Skip the live swipe test.")
    var noSwipe = false

    @Flag(help: "Set the mixer as the reader needs it (unmute, capture volume, input source, processing off) and say what changed.")
    var fix = false

    @Option(help: "Sample rate to ask the device for.")
    var rate = 44_100

    @Option(help: "Configuration file (default /etc/posminid/posminid.conf).")
    var config: String?

    @Option(help: "The daemon's socket (default: the configuration's).")
    var socket: String?

    @Option(help: "A compatibility list to use instead of /etc/posminid/compatibility.list and /usr/share/posminid/compatibility.list (repeatable).")
    var compatibility: [String] = []

    func validate() throws {
        guard swipeTimeout > 0 && swipeTimeout <= 600 else { throw ValidationError("--swipe-timeout is 1 to 600 seconds") }
        if includeAudio && report == nil { throw ValidationError("--include-audio goes with --report DIR") }
    }

    func run() throws {
        var tool = DiagnoseTool()
        tool.device = device
        tool.json = json
        tool.plot = plot
        tool.report = report
        tool.includeAudio = includeAudio
        tool.swipeTimeout = swipeTimeout
        tool.skipSwipe = noSwipe
        tool.fix = fix
        tool.rate = rate
        if let config {
            tool.configPath = config
            tool.configRequired = true
        }
        tool.socketPath = socket
        if !compatibility.isEmpty { tool.compatibilityFiles = compatibility }
        let status = tool.run(out: StandardStreams.out, err: StandardStreams.err)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Derive a reader's initial key from a BDK and write it, with its counter (labs and tests).",
        discussion: """
            AES DUKPT (aes128-dukpt): give --ikid, the 8-byte Initial Key ID. TDES DUKPT \
            (tdes-dukpt): give --ksn, the 10-byte initial KSN. Writes the key file (mode 600; it \
            refuses to replace one) and starts the key's transaction counter in the state \
            directory (it refuses when that key already has a counter: a key ID is used once). \
            Production terminals receive initial keys from a key-injection facility instead; the \
            BDK never belongs on a terminal.
            """)

    @Option(help: ArgumentHelp("Base derivation key, 32 hex digits, or - to read it from standard input (on the command line every user sees it in the process list: prefer --bdk-file or -).", valueName: "hex|-"))
    var bdk: String?

    @Option(help: ArgumentHelp("A file holding the base derivation key (32 hex digits on one line; keep it mode 600).", valueName: "path"))
    var bdkFile: String?

    @Option(help: "AES DUKPT Initial Key ID, 16 hex digits.")
    var ikid: String?

    @Option(help: "TDES DUKPT initial key serial number, 20 hex digits.")
    var ksn: String?

    @Option(help: "Where to write the key (default /etc/posminid/ik).")
    var out: String = "/etc/posminid/ik"

    @Option(name: [.customLong("state-directory"), .customLong("state-dir")],
            help: "State directory for the counter (default $STATE_DIRECTORY, else /var/lib/posminid).")
    var stateDirectory: String?

    func validate() throws {
        guard (ikid == nil) != (ksn == nil) else {
            throw ValidationError("give exactly one of --ikid (AES DUKPT) and --ksn (TDES DUKPT)")
        }
        guard BDKSource(bdk: bdk, bdkFile: bdkFile) != nil else {
            throw ValidationError("give exactly one of --bdk-file PATH, --bdk - (standard input) and --bdk HEX")
        }
    }

    func run() throws {
        guard let source = BDKSource(bdk: bdk, bdkFile: bdkFile) else { throw ValidationError("give exactly one of --bdk-file and --bdk") }
        let status = ProvisionTool.run(bdk: source, ikid: ikid, ksn: ksn, out: out, stateDirectory: stateDirectory,
                                       err: StandardStreams.err)
        if status != 0 { throw ExitCode(status) }
    }
}
