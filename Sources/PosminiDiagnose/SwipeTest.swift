import PosminiProtocol
import ReaderIO
import ReaderPipeline
import SwipeDecoder
import Magstripe
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// The live swipe: what was decoded, and the audio around it (for the plot and, on request,
/// the report).
struct SwipeResult {
    var swipe: Swipe
    var channel: Int
    /// The channel's samples from the start of the swipe test; stream time 0 is `audio[0]`.
    var audio: [Float]
    var rate: Int
    var format: TrackFormat? { swipe.tracks.first?.format }
}

extension Run {
    mutating func checkSwipe(_ capture: ALSACapture) throws(CaptureEnd) {
        let channels = capture.channels, rate = capture.sampleRate
        var configuration = DecoderConfiguration()
        configuration.keepTimeline = true
        configuration.maskPolicy = self.configuration.maskPolicy
        // The capture refused an unsupported rate already; were one to come, it ends the check, not the process.
        let decoders: [SwipeDecoder]
        do {
            decoders = try (0..<channels).map { c throws(UnsupportedSampleRate) in
                try SwipeDecoder(sampleRate: rate, channel: c, configuration: configuration)
            }
        } catch {
            throw .failed("\(capture.name): \(error)")
        }
        var audio = [[Float]](repeating: [], count: channels)
        let limit = Int(tool.swipeTimeout * Double(rate))
        for c in 0..<channels { audio[c].reserveCapacity(min(limit, 1 << 22)) }
        var found: [(Swipe, Int)] = []
        var stopAt = Int.max
        let bar = !tool.json && isatty(2) == 1
        err("posminid diagnose: swipe a test card now (within \(Int(tool.swipeTimeout)) s)…")
        var chunk = [Float](repeating: 0, count: capture.periodFrames)
        var barPeak: Float = 0, barFrames = 0, total = 0
        _ = try read(capture, frames: limit, wall: tool.swipeTimeout + 5) { data, got in
            for c in 0..<channels {
                for i in 0..<got { chunk[i] = data[i * channels + c] }
                audio[c].append(contentsOf: chunk[0..<got])
                for swipe in chunk[0..<got].withUnsafeBufferPointer({ decoders[c].push($0) }) { found.append((swipe, c)) }
                if bar { for i in 0..<got { barPeak = max(barPeak, abs(chunk[i])) } }
            }
            total += got
            barFrames += got
            if bar && barFrames >= rate / 10 {
                showLevel(levelBarText(peak: barPeak))
                barPeak = 0
                barFrames = 0
            }
            // Another head's track of the same swipe ends within a moment.
            if !found.isEmpty && stopAt == Int.max { stopAt = total + rate * 3 / 10 }
            return total < stopAt
        }
        if bar { showLevel("\r" + String(repeating: " ", count: 50) + "\r") }
        if found.isEmpty {
            for (c, decoder) in decoders.enumerated() { for swipe in decoder.finish() { found.append((swipe, c)) } }
        }
        guard let chosen = found.first(where: { !$0.0.readTracks.isEmpty }) ?? found.first else {
            report.add(DiagnoseCheck("swipe.read", "Swipe test", .fail, value: .string("no swipe in \(Int(tool.swipeTimeout)) s"),
                                     advice: "nothing that looked like a swipe arrived: check that the reader is plugged in, the capture is not muted and the input source is the jack, then swipe the whole card through at an even speed"))
            return
        }
        let result = SwipeResult(swipe: chosen.0, channel: chosen.1, audio: audio[chosen.1], rate: rate)
        swipeResult = result
        // Tracks the other heads read in the same swipe.
        let tracks = found.flatMap { $0.0.tracks }
        evaluate(result, tracks: tracks)
    }

    mutating func evaluate(_ result: SwipeResult, tracks: [TrackRead]) {
        let swipe = result.swipe
        let q = swipe.quality
        // The figures as decode --json and the daemon write them.
        let figures = SwipeFigures(swipe)
        let read = tracks.filter(\.isOK)
        let direction = swipe.direction?.rawValue ?? "direction unknown"
        if !read.isEmpty {
            let names = read.compactMap { $0.format.map { "\($0)" } }.joined(separator: ", ")
            report.add(DiagnoseCheck("swipe.read", "Swipe test", .pass, value: .string("\(names) read, \(direction)")))
        } else {
            let problem = swipe.problem ?? .notAMagstripe
            report.add(DiagnoseCheck("swipe.read", "Swipe test", .fail, value: .string("not read: \(problem.rawValue)"),
                                     advice: Self.advice(problem)))
        }
        report.add(DiagnoseCheck("swipe.tracks", "Track checks", read.isEmpty ? .fail : .pass,
                                 value: .array(tracks.map { track in
                                     var fields: [String: JSONValue] = ["status": .string(track.status.code),
                                                                        "corrected_bits": .number(Double(track.corrections))]
                                     if let format = track.format { fields["track"] = .number(Double(format.rawValue)) }
                                     if track.isOK { fields["checks"] = "sentinels, parity, LRC" }
                                     return .object(fields)
                                 }),
                                 advice: "no track passed its parity and LRC checks: see the swipe test's advice",
                                 display: tracks.map { track in
                                     "\(track.format.map { "\($0)" } ?? "no format") \(track.isOK ? "ok (sentinels, parity, LRC\(track.corrections > 0 ? ", \(track.corrections) bit corrected" : ""))" : track.status.code)"
                                 }.joined(separator: "; ")))
        let peak = figures.peakDBFS
        let clipped = q.clippedFraction > DiagnoseLimits.clipWarnFraction || q.peakDBFS > DiagnoseLimits.clipPeakDBFS
        report.add(DiagnoseCheck("swipe.level", "Swipe peak level", clipped || q.peakDBFS < DiagnoseLimits.weakWarnPeakDBFS ? .warn : .pass,
                                 value: .number(peak), unit: "dBFS",
                                 advice: clipped ? "the signal clips: lower the capture volume or the mic boost a step"
                                                 : "the signal is weak: raise the capture volume and the mic boost"))
        let snr = figures.snrDB
        report.add(CheckTable.swipeSNR.check(q.snrDB, shown: snr))
        if let speed = figures.speed, let format = result.format {
            let limit = TrackSpeedLimit.limit(rate: result.rate, bpi: format.bitsPerInch)
            let variation = speed.min > 0 ? speed.max / speed.min : 1
            let fast = speed.max > DiagnoseLimits.fastWarnFraction * limit
            let uneven = variation > DiagnoseLimits.unevenWarnRatio
            report.add(DiagnoseCheck("swipe.speed", "Swipe speed", fast || uneven ? .warn : .pass,
                                     value: ["mean": .number(speed.mean), "min": .number(speed.min),
                                             "max": .number(speed.max), "limit": .number(limit.rounded())],
                                     unit: "cm/s",
                                     advice: fast ? "the swipe came close to the fastest this device reads (\(Int(limit)) cm/s): swipe a little slower"
                                                  : "the speed changed \(format1(variation))-fold within the swipe: swipe more evenly, without stopping",
                                     display: "\(Int(speed.mean.rounded())) cm/s (\(Int(speed.min.rounded()))–\(Int(speed.max.rounded())); this device reads up to \(Int(limit.rounded())))"))
        } else {
            report.add(DiagnoseCheck("swipe.speed", "Swipe speed", .notApplicable, value: "no track format recognised"))
        }
        let jitter = SwipeFigures.round(figures.jitter * 100, 2)
        report.add(CheckTable.jitter.check(q.jitter, shown: jitter))
    }

    static func advice(_ problem: SwipeProblem) -> String {
        switch problem {
        case .tooFast: "too fast for this device: swipe more slowly (about one second for the whole card)"
        case .tooSlow: "too slow: swipe in one movement, in about one second"
        case .unevenSpeed: "the speed changed too much: swipe at an even speed, without stopping"
        case .partialSwipe: "only part of the stripe passed the head: swipe the whole card through"
        case .weakSignal: "the signal is too weak: raise the capture volume and mic boost to the maximum (--fix)"
        case .clipped: "the signal clips: lower the mic boost (or the capture volume) a step"
        case .noisy: "too much noise: keep the reader away from chargers and power supplies, and try another port"
        case .notAMagstripe: "the head saw no stripe: swipe with the stripe facing the head, or try another test card"
        }
    }

    // MARK: Plot and report

    mutating func writeArtifacts() throws {
        let svg = swipeResult.map { SwipePlot.svg($0, device: device) }
        if let plot = tool.plot {
            if let svg {
                let (directory, name) = try ReportFileRules.plotDirectory(plot)
                do { try directory.write(Array(svg.utf8), to: name, mode: 0o644) } catch {
                    throw DiagnoseTool.NotRun(message: "cannot write the plot: \(error)")
                }
            } else {
                err("posminid diagnose: no swipe, so no plot written to \(plot)")
            }
        }
        guard let directory = tool.report, let bundle = reportDirectory else { return }
        do {
            try bundle.write(Array((report.json.text + "\n").utf8), to: "report.json", mode: 0o644)
            if let svg { try bundle.write(Array(svg.utf8), to: "swipe.svg", mode: 0o644) }
            var versions = "posminid \(PosminiProtocol.release)\nalsa-lib \(SystemLibraries.alsaVersion)\n"
            versions += String(decoding: (try? FileBytes.read("/proc/version", limit: 4096)) ?? [], as: UTF8.self)
            try bundle.write(Array(versions.utf8), to: "versions.txt", mode: 0o644)
            var devices = "diagnosed: \(device)\n"
            for card in cards {
                devices += "\(card.syspath): card \(card.number.map(String.init) ?? "?") id \(card.cardID ?? "?") \(card.displayName)"
                devices += card.usbID.map { " usb \($0)" } ?? ""
                devices += card.isMarkedReader ? " POSMINI_READER=1" : ""
                devices += "\n"
            }
            devices += String(decoding: (try? FileBytes.read("/proc/asound/cards", limit: 1 << 16)) ?? [], as: UTF8.self)
            try bundle.write(Array(devices.utf8), to: "devices.txt", mode: 0o644)
            let control = cardNumber.map { "hw:\($0)" } ?? device
            var mixerText = "mixer \(control)\n"
            if let mixer = try? ALSAMixer(device: control) {
                for c in mixer.controls() {
                    mixerText += "'\(c.name)',\(c.index):"
                    if let v = c.captureVolume { mixerText += " capture volume \(v.values) of \(v.range)" }
                    if let s = c.captureSwitch { mixerText += " capture switch \(s.map { $0 ? "on" : "off" })" }
                    if let s = c.playbackSwitch { mixerText += " switch \(s.map { $0 ? "on" : "off" })" }
                    if let e = c.enumeration, e.current < e.items.count { mixerText += " item '\(e.items[e.current])' of \(e.items)" }
                    mixerText += "\n"
                }
            } else {
                mixerText += "no mixer\n"
            }
            try bundle.write(Array(mixerText.utf8), to: "mixer.txt", mode: 0o644)
            if tool.includeAudio, let result = swipeResult {
                err("posminid diagnose: --include-audio writes the swipe's raw audio, which encodes the whole card: use a test card only")
                let from = max(0, Int((result.swipe.start - 0.2) * Double(result.rate)))
                let to = min(result.audio.count, Int((result.swipe.end + 0.2) * Double(result.rate)))
                let clip = from < to ? Array(result.audio[from..<to]) : []
                try bundle.write(WAV.encode16(PCMAudio(sampleRate: result.rate, channels: [clip])), to: "swipe.wav", mode: 0o600)
            }
        } catch {
            throw DiagnoseTool.NotRun(message: "cannot write the report to \(directory): \(error)")
        }
    }
}

/// The live level bar on a terminal (stderr), redrawn in place.
func showLevel(_ text: String) {
    StandardStreams.errInPlace(text)
}

func levelBarText(peak: Float) -> String {
    let db = peak > 0 ? 20 * log10(Double(peak)) : -90
    let width = 30
    let filled = max(0, min(width, Int((db + 60) / 60 * Double(width))))
    return "\r  level [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
        + (db > -90 ? "\(Int(db.rounded())) dBFS " : "silent   ")
}
