import PosminiConfig
import PosminiProtocol
import ReaderIO
import SwipeDecoder
import Magstripe
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// `posminid --diagnose`: the technician's compatibility check of one capture device, in the
/// order a person would go: the reader, permissions, the device and its formats, the
/// compatibility list, the mixer, the idle signal, a live swipe, and a verdict.
public struct DiagnoseTool: Sendable {
    public var device: String?
    public var json = false
    public var plot: String?
    public var report: String?
    public var includeAudio = false
    /// Seconds of audio to wait for the test swipe.
    public var swipeTimeout = 30.0
    public var idleSeconds = 2.0
    public var skipSwipe = false
    public var fix = false
    public var rate = 44_100
    public var configPath = "/etc/posminid/posminid.conf"
    public var configRequired = false
    public var socketPath: String?
    /// Compatibility lists, most specific first (nil: /etc/posminid and /usr/share/posminid).
    public var compatibilityFiles: [String]?

    public init() {}

    /// Why the check could not run (exit 2).
    struct NotRun: Error { var message: String }

    /// Runs the checks; returns 0 (all passed), 1 (something needs attention) or 2 (the check
    /// could not run).
    public func run(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) -> Int32 {
        do {
            var state = try Run(tool: self, err: err)
            let report = try state.perform()
            out(json ? report.json.text : report.text)
            return report.exitStatus
        } catch let failure as NotRun {
            err("posminid diagnose: \(failure.message)")
            if json { out((["error": .string(failure.message), "device": .string(device ?? "")] as JSONValue).text) }
            return 2
        } catch {
            err("posminid diagnose: \(error)")
            return 2
        }
    }
}

/// One diagnose run's state.
struct Run {
    let tool: DiagnoseTool
    let err: @Sendable (String) -> Void
    var configuration: DaemonConfiguration
    let cards: [SoundCard]
    var report: DiagnoseReport
    let device: String
    /// The card behind the device, when it names one.
    var card: SoundCard?
    var cardNumber: Int?
    var daemon: DaemonRelease?
    var capture: ALSACapture?
    var listEntry: CompatibilityEntry?
    var idleAudio: [[Float]] = []
    var swipeResult: SwipeResult?
    /// `--report`'s directory, opened and checked before anything runs (a refusal costs the
    /// technician no swipe); every report file is written through it.
    var reportDirectory: Directory?

    init(tool: DiagnoseTool, err: @escaping @Sendable (String) -> Void) throws {
        self.tool = tool
        self.err = err
        if let report = tool.report { reportDirectory = try ReportFileRules.reportDirectory(report) }
        do {
            configuration = try DaemonConfiguration.load(tool.configPath, optional: !tool.configRequired)
        } catch {
            throw DiagnoseTool.NotRun(message: "configuration refused: \(error)")
        }
        if let socket = tool.socketPath { configuration.socketPath = socket }
        cards = DeviceMonitor.soundCards().filter { !$0.isModem }
        // The device: as named, else the first configured, else the first marked reader.
        if let named = tool.device {
            device = named
        } else if let configured = configuration.devices.first {
            device = configured
        } else if let marked = cards.first(where: \.isMarkedReader) {
            device = marked.captureDevice
        } else {
            let list = cards.isEmpty ? "no sound cards" : "sound cards: " + cards.map { "\($0.captureDevice) (\($0.displayName))" }.joined(separator: ", ")
            throw DiagnoseTool.NotRun(message: "no reader to check (\(list)): plug the reader in, or name its device with --device (`arecord -L` lists them)")
        }
        report = DiagnoseReport(device: device)
        if let reference = CardReference(device: device) {
            card = cards.first { $0.matches(reference) }
            switch reference {
            case .number(let n): cardNumber = n
            case .id(let id): cardNumber = card?.number ?? ALSACards.index(of: id)
            }
        }
    }

    mutating func perform() throws -> DiagnoseReport {
        checkReader()
        checkPermissions()
        defer { daemon?.reclaim() }
        try openDevice()
        checkCompatibilityList()
        checkMixer()
        if let capture {
            defer { capture.close() }
            do {
                try capture.start()
                try checkIdle(capture)
                if tool.skipSwipe {
                    report.add(DiagnoseCheck("swipe.read", "Swipe test", .notApplicable, value: "skipped (--no-swipe)"))
                } else {
                    try checkSwipe(capture)
                }
            } catch let end {
                report.add(DiagnoseCheck("device.capture", "Capture runs", .fail, value: .string("\(end)"),
                                         advice: "the device stopped delivering audio: replug the reader and run this again", fixable: true))
            }
        }
        try writeArtifacts()
        return report
    }

    // MARK: The reader

    mutating func checkReader() {
        let readers = cards.filter(\.isMarkedReader).map(\.captureDevice) + configuration.devices
        var value: [String: JSONValue] = [
            "device": .string(device),
            "cards": .array(cards.map { .string("\($0.captureDevice) \($0.displayName)\($0.isMarkedReader ? " (reader)" : "")") }),
        ]
        if let card { value["card"] = .string(card.cardID ?? "\(card.number ?? 0)") }
        let isReader = readers.contains(device) || card?.isMarkedReader == true
        value["reader"] = .bool(isReader)
        if CardReference(device: device) != nil && card == nil && !cards.isEmpty {
            report.add(DiagnoseCheck("reader.device", "Reader device", .fail, value: .object(value),
                                     advice: "no sound card matches \(device): check the name against `arecord -l`", fixable: true))
        } else {
            let cardList = cards.isEmpty ? "no sound cards" : "cards: " + cards.map { "\($0.captureDevice) \($0.displayName)\($0.isMarkedReader ? " (reader)" : "")" }.joined(separator: ", ")
            report.add(DiagnoseCheck("reader.device", "Reader device", isReader || tool.device != nil ? .pass : .warn,
                                     value: .object(value),
                                     advice: isReader ? nil : "the daemon does not take this device yet: mark its adapter in the udev rules or add `device = \(device)` to posminid.conf",
                                     display: "\(device)\(isReader ? ", a reader" : ", named on the command line")\(card.map { " (\($0.displayName))" } ?? ""); \(cardList)"))
        }
        // The jack, on a card with jack controls.
        if let card {
            do {
                let controls = try ALSAJackControls(device: card.controlDevice)
                let watch = try JackWatch(source: controls, now: monotonicSeconds())
                controls.close()
                switch watch.state.plugged {
                case .some(true):
                    report.add(DiagnoseCheck("reader.jack", "Jack", .pass, value: .string("plugged (\(watch.jacks.joined(separator: ", ")))")))
                case .some(false):
                    report.add(DiagnoseCheck("reader.jack", "Jack", .fail, value: .string("empty (\(watch.jacks.joined(separator: ", ")))"),
                                             advice: "nothing is detected in the jack: push the reader's plug all the way in (a loose jack reads as empty)"))
                case nil:
                    report.add(DiagnoseCheck("reader.jack", "Jack", .notApplicable, value: "no jack detection on this card"))
                }
            } catch {
                report.add(DiagnoseCheck("reader.jack", "Jack", .notApplicable, value: .string("jack controls not readable: \(error.message)")))
            }
        } else {
            report.add(DiagnoseCheck("reader.jack", "Jack", .notApplicable, value: "not a sound card's device"))
        }
        // Flaps, as the daemon counted them.
        daemon = DaemonRelease(socket: configuration.socketPath, device: device, cardID: card?.cardID)
        if daemon == nil, let refusal = DaemonAccess.refusal(socket: configuration.socketPath, user: PermissionsProbe.userName()) {
            report.add(DiagnoseCheck("daemon.access", "Daemon reachable", .fail, value: .string(refusal.value), advice: refusal.advice))
        }
        if let flaps = daemon?.jackFlaps {
            report.add(DiagnoseCheck("reader.jack_flaps", "Jack flapping", flaps == 0 ? .pass : .warn, value: .number(Double(flaps)),
                                     unit: "changes",
                                     advice: "the jack made and broke contact \(flaps) times in quick succession: a loose or worn jack; try another port or adapter, or a reader with a firmer plug"))
        } else {
            report.add(DiagnoseCheck("reader.jack_flaps", "Jack flapping", .notApplicable, value: "counted by the running daemon only"))
        }
    }

    // MARK: Permissions

    mutating func checkPermissions() {
        let probe = PermissionsProbe.measure(
            cardNumber: cardNumber, device: device, socket: configuration.socketPath, stateDirectory: configuration.stateDirectory,
            keyFile: KeyFileLocation.locate(configured: configuration.keyFile ?? KeyFileLocation.defaultPath, credentialsDirectory: nil))
        for check in Checks.permissions(probe, socketGroup: configuration.socketGroup) { report.add(check) }
    }

    // MARK: The device

    mutating func openDevice() throws {
        if let daemon {
            switch daemon.release(seconds: tool.idleSeconds + (tool.skipSwipe ? 0 : tool.swipeTimeout) + 20) {
            case .released:
                report.add(DiagnoseCheck("daemon.release", "Daemon lets go", .pass,
                                         value: .string("posminid released reader \(daemon.readerID) for the check; it takes it back at the end")))
            case .refused(let code, let message) where code == "not_permitted":
                report.add(DiagnoseCheck("daemon.release", "Daemon lets go", .fail, value: .string("posminid holds the reader: \(message)"),
                                         advice: "only an admin may ask posminid to let go of a reader: run `sudo posminid --diagnose`, or be in the admin group (admin_group in posminid.conf) and in the group of the reader's device nodes"))
            case .refused(_, let message):
                report.add(DiagnoseCheck("daemon.release", "Daemon lets go", .warn, value: .string("posminid did not let go: \(message)")))
            case .noAnswer:
                break
            }
        }
        do {
            capture = try ALSACapture(device: device, rate: tool.rate)
        } catch {
            if error.unsupportedRate != nil {
                report.add(DiagnoseCheck("device.open", "Device opens", .fail, value: .string(error.description),
                                         advice: "ask for a rate of \(SampleRate.supported.lowerBound)-\(SampleRate.supported.upperBound) Hz with --rate", fixable: false))
                return
            }
            switch -error.code {
            case ENOENT, ENODEV, ENXIO, EINVAL:
                throw DiagnoseTool.NotRun(message: "cannot open '\(device)': \(error.message): no such capture device (`arecord -L` lists the names ALSA knows)")
            case EBUSY:
                let holders = cardNumber.map { DeviceHolders.find(card: $0, device: CardReference.deviceNumber(in: device)) } ?? []
                let who = holders.isEmpty ? "another program" : holders.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", ")
                report.add(DiagnoseCheck("device.open", "Device opens", .fail, value: .string("busy: held by \(who)"),
                                         advice: "stop \(who) or have it leave this device alone (a sound server: see README, \"Sound servers\"), then run this again"))
            case EACCES, EPERM:
                report.add(DiagnoseCheck("device.open", "Device opens", .fail, value: .string(error.message),
                                         advice: "add the user to the audio group (`usermod -aG audio \(PermissionsProbe.userName())`)"))
            default:
                report.add(DiagnoseCheck("device.open", "Device opens", .fail, value: .string(error.description),
                                         advice: "replug the reader; if this stays, send the --report bundle to the provider", fixable: false))
            }
            return
        }
        guard let capture else { return }
        let offered = capture.capabilities
        report.add(DiagnoseCheck("device.open", "Device opens", .pass, value: .string("\(capture.format), \(capture.channels) channel\(capture.channels == 1 ? "" : "s")")))
        var formats: [String: JSONValue] = ["formats": .array(offered.formats.map { .string($0) })]
        if let rates = offered.rates { formats["rates_hz"] = .array([.number(Double(rates.lowerBound)), .number(Double(rates.upperBound))]) }
        if let channels = offered.channels { formats["channels"] = .array([.number(Double(channels.lowerBound)), .number(Double(channels.upperBound))]) }
        var shown = offered.formats.joined(separator: " ")
        if let rates = offered.rates { shown += "; \(rates.lowerBound)–\(rates.upperBound) Hz" }
        if let channels = offered.channels { shown += "; \(channels.lowerBound)–\(channels.upperBound) channels" }
        report.add(DiagnoseCheck("device.formats", "Formats offered", .pass, value: .object(formats), display: shown))

        let rate = capture.sampleRate
        var limits: [String: JSONValue] = [:]
        for (track, bpi) in TrackSpeedLimit.densities {
            limits["track\(track)"] = .number(TrackSpeedLimit.limit(rate: rate, bpi: bpi).rounded())
        }
        let track1 = TrackSpeedLimit.limit(rate: rate, bpi: 210)
        let status: DiagnoseCheck.Status = track1 >= 100 ? .pass : (track1 >= 40 ? .warn : .fail)
        report.add(DiagnoseCheck("device.rate", "Sample rate", rate >= 44_100 ? .pass : .warn, value: .number(Double(rate)), unit: "Hz",
                                 advice: "the device does not offer 44.1 kHz; \(rate) Hz is used, which limits the swipe speed (below)"))
        report.add(DiagnoseCheck("device.speed_limit", "Fastest readable swipe", status, value: .object(limits), unit: "cm/s",
                                 advice: status == .fail
                                    ? "at \(rate) Hz Track 1 reads only below \(Int(track1)) cm/s: this device samples too slowly for a reader"
                                    : "at \(rate) Hz Track 1 reads only below \(Int(track1)) cm/s: swipe slowly and evenly",
                                 fixable: status != .fail,
                                 display: TrackSpeedLimit.densities.map { "Track \($0.track) ≤ \(Int(TrackSpeedLimit.limit(rate: rate, bpi: $0.bpi).rounded()))" }.joined(separator: ", ") + " cm/s"))
    }

    // MARK: The compatibility list

    mutating func checkCompatibilityList() {
        let files = tool.compatibilityFiles ?? CompatibilityList.defaultFiles
        var entries: [CompatibilityEntry] = []
        for file in files {
            do {
                entries += try CompatibilityList.load(file)
            } catch {
                report.add(DiagnoseCheck("compatibility.file", "Compatibility list", .warn, value: .string(error.description),
                                         advice: "fix the list entry named above (its header explains the format)"))
            }
        }
        let names = [device, card?.cardID, card?.displayName].compactMap { $0 }
        listEntry = entries.first { $0.matches(usbID: card?.usbID, names: names) }
        guard let entry = listEntry else {
            report.add(DiagnoseCheck("compatibility.list", "Compatibility list", .notApplicable,
                                     value: .string("not listed\(card?.usbID.map { " (USB \($0))" } ?? "")"),
                                     advice: "if every other check passes, add this device to /etc/posminid/compatibility.list; if not, send the --report bundle to the provider"))
            return
        }
        let value = JSONValue.string("\(entry.name) (\(entry.verdict), \(entry.file):\(entry.line))")
        if entry.verdict == .bad {
            report.add(DiagnoseCheck("compatibility.list", "Compatibility list", .fail, value: value,
                                     advice: entry.note ?? "this device is known not to work with the reader: use a listed adapter", fixable: false))
        } else {
            report.add(DiagnoseCheck("compatibility.list", "Compatibility list", .pass, value: value, advice: entry.note))
        }
    }

    // MARK: The mixer

    mutating func checkMixer() {
        let control = cardNumber.map { "hw:\($0)" } ?? device
        guard var check = (try? ALSAMixer(device: control)).map({ MixerCheck(mixer: $0, entry: listEntry) }),
              !check.controls.isEmpty else {
            for (id, title) in MixerCheck.all {
                report.add(DiagnoseCheck(id, title, .notApplicable, value: "the device has no mixer"))
            }
            return
        }
        if tool.fix { report.fixed = check.fix() }
        for result in check.evaluate() { report.add(result) }
    }

    // MARK: Capture

    /// Reads from the device until `body` says stop, `frames` have come, or `wall` seconds pass.
    func read(_ capture: ALSACapture, frames wanted: Int, wall: Double,
              _ body: (UnsafeBufferPointer<Float>, Int) -> Bool) throws(CaptureEnd) -> Int {
        let channels = capture.channels
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: capture.periodFrames * channels)
        defer { buffer.deallocate() }
        let stop = EventFD()
        let deadline = monotonicSeconds() + wall
        var total = 0
        while total < wanted && monotonicSeconds() < deadline {
            guard capture.waitForData(stop: stop) else { break }
            let got = try capture.read(into: buffer, frames: min(capture.periodFrames, wanted - total))
            if got == 0 { continue }
            total += got
            if !body(UnsafeBufferPointer(start: buffer, count: got * channels), got) { break }
        }
        return total
    }

    mutating func checkIdle(_ capture: ALSACapture) throws(CaptureEnd) {
        let channels = capture.channels, rate = capture.sampleRate
        var audio = [[Float]](repeating: [], count: channels)
        let frames = Int(tool.idleSeconds * Double(rate))
        let overrunsBefore = capture.overruns
        _ = try read(capture, frames: frames, wall: tool.idleSeconds + 5) { chunk, got in
            for c in 0..<channels { for i in 0..<got { audio[c].append(chunk[i * channels + c]) } }
            return true
        }
        idleAudio = audio
        let figures = (audio.first ?? []).isEmpty ? [] : audio.map { IdleFigures.measure($0, rate: rate) }
        for check in Checks.idle(figures, overruns: capture.overruns - overrunsBefore, seconds: tool.idleSeconds) { report.add(check) }
    }
}
