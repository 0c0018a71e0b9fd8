import ReaderIO
import ReaderPipeline
import SwipeDecoder
import SwipeSynth
import Magstripe
import AudioFile
import CMallocCounter
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The capture pipeline's figures: the ring between two threads, the capture loop's
/// allocations through real libasound, and end-of-swipe → result latency on a paced source.
func captureReport(ringSamples: Int) {
    print("## Capture pipeline (ReaderIO)\n")
    ringStress(total: ringSamples)
    captureAllocations()
    latency()
    levelChangeLatency(runs: 10)
    pulseLatency(runs: 10)
}

/// Two threads, every sample checked; median of three runs.
func ringStress(total: Int) {
    var rates: [Double] = []
    var wrongTotal = 0
    for _ in 0..<3 {
        let ring = SPSCRing<UInt32>(minimumCapacity: 1 << 16)
        let begin = monotonicSeconds()
        let producer = OSThread(name: "ring-producer") {
            var buffer = [UInt32](repeating: 0, count: 441)
            var next = 0
            while next < total {
                let n = min(buffer.count, total - next)
                for i in 0..<n { buffer[i] = UInt32(truncatingIfNeeded: next + i) }
                var sent = 0
                while sent < n {
                    sent += buffer.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[sent..<n])) }
                }
                next += n
            }
        }
        var received = 0, wrong = 0
        var out = [UInt32](repeating: 0, count: 1_024)
        while received < total {
            let n = out.withUnsafeMutableBufferPointer { ring.read(into: $0) }
            for i in 0..<n where out[i] != UInt32(truncatingIfNeeded: received + i) { wrong += 1 }
            received += n
        }
        producer.join()
        rates.append(Double(total) / (monotonicSeconds() - begin))
        wrongTotal += wrong
    }
    print("| ring stress (two threads, every sample checked, median of 3) | value |")
    print("| --- | ---: |")
    print("| samples moved per run | \(total / 1_000_000) M |")
    print("| throughput | \(fmt(median(rates) / 1e6, 1)) M samples/s |")
    print("| samples wrong, lost or repeated | \(wrongTotal) |")
    print("")
}

/// A session on an ALSA device (alsa-lib's `file` plugin over `null`: real snd_pcm_readi and
/// poll, no sound card), the capture thread's allocations counted from just before its loop to
/// just after it.
func captureAllocations() {
    let directory = "/tmp/posmini-bench-\(getpid())"
    mkdir(directory, 0o700)
    defer { _ = system("rm -rf '\(directory)'") }
    let raw = directory + "/capture.raw"
    var bytes = [UInt8](repeating: 0, count: 44_100 * 2 * 5)
    for i in stride(from: 0, to: bytes.count, by: 2) { bytes[i] = UInt8(truncatingIfNeeded: i / 7) }
    try? FileBytes.write(bytes, to: raw)
    let conf = directory + "/asound.conf"
    try? FileBytes.write(Array("pcm.posmini_bench { type file slave.pcm \"null\" file \"/dev/null\" infile \"\(raw)\" format \"raw\" }\n".utf8), to: conf)
    setenv("ALSA_CONFIG_PATH", "/usr/share/alsa/alsa.conf:" + conf, 1)
    let counts = Mutex<(start: Int, end: Int, periods: Int)>((0, 0, 0))
    var configuration = ReaderSession.Configuration()
    configuration.captureProbe = { ended, periods in
        let now = posmini_thread_allocation_count()
        counts.withLock { if ended { $0.end = now; $0.periods = periods } else { $0.start = now } }
    }
    let source: ALSACapture
    do {
        source = try ALSACapture(device: "posmini_bench")
    } catch {
        print("capture loop: ALSA file plugin unavailable (\(error))\n")
        return
    }
    let session = ReaderSession(source: source, configuration: configuration) { _ in }
    session.start()
    let deadline = monotonicSeconds() + 10
    while session.statistics.framesCaptured < 5_000 * source.periodFrames && monotonicSeconds() < deadline {
        usleep(10_000)
    }
    session.stop()
    let c = counts.withLock { $0 }
    print("| capture loop (ALSA `file` plugin device, \(source.format), \(source.periodFrames)-frame periods) | value |")
    print("| --- | ---: |")
    print("| periods read | \(c.periods) |")
    print("| allocations in the capture thread's loop | \(c.end - c.start) (\(fmt(Double(c.end - c.start) / Double(max(1, c.periods)), 3)) per period) |")
    print("")
}

/// Ten swipes in a paced recording: time from each swipe's last flux transition (known from the
/// synthesizer) to the delivery of its result.
func latency() {
    let (samples, ends) = mixedSwipes(rate: 44_100, count: 10, seed: 31, speeds: 200...1_000, silence: 0.2)
    let source = FileSource(name: "latency", audio: PCMAudio(sampleRate: 44_100, channels: [samples]), paced: true)
    let arrivals = Mutex<[(time: Double, end: Double)]>([])
    let session = ReaderSession(source: source) { event in
        if case .swipe(let swipe) = event {
            let now = monotonicSeconds()
            arrivals.withLock { $0.append((now, swipe.end)) }
        }
    }
    session.start()
    session.waitUntilFinished()
    let got = arrivals.withLock { $0 }
    // Each result against the true end of the swipe it reports (nearest by time).
    var latencies: [Double] = []
    for arrival in got {
        guard let end = ends.min(by: { abs($0 - arrival.end) < abs($1 - arrival.end) }) else { continue }
        latencies.append(arrival.time - source.startedAt - end)
    }
    print("| end of swipe → result (paced 44.1 kHz recording, 10 ms periods, \(got.count) of 10 swipes) | ms |")
    print("| --- | ---: |")
    if !latencies.isEmpty {
        print("| median | \(fmt(median(latencies) * 1_000, 1)) |")
        print("| max | \(fmt(latencies.max()! * 1_000, 1)) |")
    }
    print("")
}

/// The input's level changes 0.3 s before a swipe (`LevelChange`), played paced in 10 ms periods:
/// wall-clock time from the swipe's last flux transition to its result, over `runs` runs of each
/// case (a different swipe each run), with steady input as the baseline in the same runs. The
/// cases of a run play side by side (each its own session), the runs one after another.
func levelChangeLatency(runs: Int) {
    enum Case: Hashable, CaseIterable {
        case steady, change(LevelChange)
        static var allCases: [Case] { [.steady] + LevelChange.allCases.map { .change($0) } }
        var name: String {
            switch self {
            case .steady: "steady noise (baseline)"
            case .change(let c): c.rawValue
            }
        }
    }
    var wall: [Case: [Double]] = [:], audio: [Case: [Double]] = [:]
    var missing: [Case: Int] = [:]
    for run in 0..<runs {
        /// When the read arrived (monotonic seconds), and where it was decided (samples).
        final class Arrival: Sendable { let got = Mutex<(wall: Double, decided: Int64)?>(nil) }
        var sessions: [(Case, FileSource, ReaderSession, Arrival, Double)] = []
        for c in Case.allCases {
            var path = AudioPath(sampleRate: 44_100)
            path.snr = 30
            path.level = -14
            path.leadingSilence = 0.8
            path.trailingSilence = 0.4
            let format: TrackFormat = run % 2 == 0 ? .track1 : .track2
            let text = format == .track1 ? GridCards.track1[run % GridCards.track1.count] : GridCards.track2[run % GridCards.track2.count]
            let truth = SwipeSynthesizer.render(SwipeScenario(
                tracks: [try! StripeTrack(text: text, format: format)],
                motion: Motion(speed: .constant(200 + Double(run) * 50)), audio: path, seed: UInt64(100 + run)))
            var samples = truth.channels[0]
            if case .change(let change) = c {
                change.apply(to: &samples, at: Int((truth.swipeStart - 0.3) * 44_100), sampleRate: 44_100)
            }
            let source = FileSource(name: c.name, audio: PCMAudio(sampleRate: 44_100, channels: [samples]), paced: true)
            let arrival = Arrival()
            let session = ReaderSession(source: source) { event in
                if case .swipe(let swipe) = event, !swipe.readTracks.isEmpty {
                    let now = monotonicSeconds()
                    arrival.got.withLock { if $0 == nil { $0 = (now, swipe.decidedAt ?? 0) } }
                }
            }
            sessions.append((c, source, session, arrival, truth.swipeEnd))
        }
        for s in sessions { s.2.start() }
        for s in sessions { s.2.waitUntilFinished() }
        for (c, source, _, arrival, end) in sessions {
            guard let got = arrival.got.withLock({ $0 }) else { missing[c, default: 0] += 1; continue }
            wall[c, default: []].append(got.wall - source.startedAt - end)
            audio[c, default: []].append(Double(got.decided) / 44_100 - end)
        }
    }
    print("| a swipe 0.3 s after the level changes (paced, 10 ms periods, \(runs) runs) | wall median ms | wall max ms | audio-time median ms | not read |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for c in Case.allCases {
        let w = wall[c] ?? [], a = audio[c] ?? []
        guard !w.isEmpty else { print("| \(c.name) | - | - | - | \(missing[c] ?? 0) |"); continue }
        print("| \(c.name) | \(fmt(median(w) * 1_000, 1)) | \(fmt(w.max()! * 1_000, 1)) | \(fmt(median(a) * 1_000, 1)) | \(missing[c] ?? 0) |")
    }
    print("")
}

/// The PulseAudio path (`--device pulse`, a null sink's monitor, as on a desktop terminal): the
/// sink is silent until `paplay` starts, so every swipe comes 0.4 s after digital silence turned
/// into noise. Wall-clock time from the moment `paplay` is started plus the swipe's end in the
/// file, to the result: playback start included. Skipped when no PulseAudio server can run.
func pulseLatency(runs: Int) {
    let directory = "/tmp/posmini-bench-pulse-\(getpid())"
    let runtime = directory + "/runtime"
    mkdir(directory, 0o700)
    mkdir(runtime, 0o700)
    defer { _ = system("rm -rf '\(directory)'") }
    let server = "unix:\(runtime)/pulse/native"
    let environment = "env XDG_RUNTIME_DIR='\(runtime)' HOME='\(directory)' PULSE_SERVER='\(server)'"
    let started = system("\(environment) pulseaudio -n --daemonize=yes --exit-idle-time=-1 --system=no "
        + "--log-target=file:\(directory)/pulse.log "
        + "-L 'module-null-sink sink_name=reader rate=44100 channels=1' -L module-native-protocol-unix >/dev/null 2>&1")
    defer { _ = system("\(environment) pulseaudio --kill >/dev/null 2>&1") }
    var ready = false
    for _ in 0..<100 where started == 0 {
        if system("\(environment) pactl info >/dev/null 2>&1") == 0 { ready = true; break }
        usleep(50_000)
    }
    guard ready else { print("PulseAudio path: no PulseAudio server could start here; skipped\n"); return }
    setenv("PULSE_SERVER", server, 1)
    setenv("PULSE_SOURCE", "reader.monitor", 1)
    setenv("XDG_RUNTIME_DIR", runtime, 1)
    let source: ALSACapture
    do { source = try ALSACapture(device: "pulse", periodTime: 0.01) } catch {
        print("PulseAudio path: ALSA's pulse device unavailable (\(error)); skipped\n")
        return
    }
    final class Arrivals: Sendable { let times = Mutex<[Double]>([]) }
    let arrivals = Arrivals()
    let session = ReaderSession(source: source) { event in
        if case .swipe(let swipe) = event, !swipe.readTracks.isEmpty {
            let now = monotonicSeconds()
            arrivals.times.withLock { $0.append(now) }
        }
    }
    session.start()
    defer { session.stop() }
    var latencies: [Double] = []
    var first: Double?
    var missed = 0
    // Run 0 plays as soon as the capture has opened; the others after it has run a while.
    for run in 0...runs {
        if run == 1 { usleep(3_000_000) }
        var path = AudioPath(sampleRate: 44_100)
        path.snr = 30
        path.level = -14
        path.leadingSilence = 0.4
        path.trailingSilence = 0.3
        let truth = SwipeSynthesizer.render(SwipeScenario(
            tracks: [try! StripeTrack(text: GridCards.track1[run % GridCards.track1.count], format: .track1)],
            motion: Motion(speed: .constant(250 + Double(run) * 25)), audio: path, seed: UInt64(300 + run)))
        let wav = directory + "/swipe\(run).wav"
        try? FileBytes.write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: truth.channels)), to: wav)
        let before = arrivals.times.withLock { $0.count }
        let played = monotonicSeconds()
        _ = system("\(environment) paplay --device=reader '\(wav)' >/dev/null 2>&1")
        // The result, or give up 2 s after playback ended.
        let deadline = monotonicSeconds() + 2
        while arrivals.times.withLock({ $0.count }) == before && monotonicSeconds() < deadline { usleep(2_000) }
        guard let arrival = arrivals.times.withLock({ $0.count > before ? $0[before] : nil }) else { missed += 1; continue }
        if run == 0 { first = arrival - played - truth.swipeEnd } else { latencies.append(arrival - played - truth.swipeEnd) }
        usleep(300_000)      // the sink falls silent again before the next swipe
    }
    print("| PulseAudio path: a null sink silent until playback, swipe 0.4 s into it (\(runs) runs, 10 ms periods) | ms |")
    print("| --- | ---: |")
    if !latencies.isEmpty {
        print("| end of swipe → result, median (playback start included) | \(fmt(median(latencies) * 1_000, 1)) |")
        print("| max | \(fmt(latencies.max()! * 1_000, 1)) |")
        print("| each run, in order | \(latencies.map { fmt($0 * 1_000, 0) }.joined(separator: " ")) |")
    }
    print("| a swipe played as soon as the capture opened (the null sink renders in blocks of up to 2 s while idle) | \(first.map { fmt($0 * 1_000, 1) } ?? "not read") |")
    print("| not read | \(missed) |")
    print("")
}
