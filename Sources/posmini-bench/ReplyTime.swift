import AudioFile
import PosminiClient
import PosminiProtocol
import ReaderIO
import SwipeSynth
import Magstripe
#if canImport(Glibc)
import Glibc
#endif

/// A client's request while the daemon's reader floods it with swipes: `posminid` (the release
/// build beside this benchmark) replays a recording of swipes flat out, and a client sends
/// `status` and times each reply. Requests are handled between reader events, never after the
/// whole backlog; STATUS `swipes` shows the flood went on meanwhile.
func replyTimeReport(requests: Int = 200) {
    print("## A request while a reader floods the daemon\n")
    let executable = (CommandLine.arguments[0].split(separator: "/", omittingEmptySubsequences: false).dropLast()
        + ["posminid"]).joined(separator: "/")
    guard (try? SystemCall.retrying("access") { access(executable, X_OK) }) != nil else {
        print("reply time: \(executable) is not built (`make bench` builds it)\n")
        return
    }
    var template = Array("/tmp/posmini-bench-reply-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { return }
    let directory = String(cString: made)
    defer { _ = system("rm -rf '\(directory)'") }

    // 40 swipes of the grid's test cards, 0.5 s apart, over one noise bed.
    var samples: [Float] = []
    for k in 0..<40 {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 80
        audio.leadingSilence = 0.25
        audio.trailingSilence = 0.25
        let text = GridCards.track1[k % GridCards.track1.count]
        samples += SwipeSynthesizer.render(SwipeScenario(tracks: [try! StripeTrack(text: text, format: .track1)],
                                                         motion: Motion(speed: .constant(300)), audio: audio,
                                                         seed: UInt64(k + 1))).channels[0]
    }
    var noise = SynthRandom(seed: 5)
    for k in samples.indices { samples[k] += Float(0.0017 * noise.gaussian()) }
    let wav = directory + "/flood.wav"
    try? FileBytes.write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: wav)
    let socket = directory + "/posmini.sock"

    let arguments = [executable, "--replay", wav, "--replay-fast", "--replay-repeat", "200", "--socket", socket,
                     "--state-directory", directory, "--test-key"]
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, directory + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    guard spawned == 0 else { print("reply time: cannot start posminid (\(spawned))\n"); return }
    defer {
        _ = SystemCall.attempt("kill") { kill(pid, SIGTERM) }
        var status: Int32 = 0
        _ = SystemCall.attempt("waitpid") { waitpid(pid, &status, 0) }
    }

    // Bounded by count: the daemon is listening within a few hundred milliseconds.
    var connected: ControlClient?
    for _ in 0..<400 {
        if let client = try? ControlClient(path: socket) { connected = client; break }
        usleep(25_000)
    }
    guard let client = connected else {
        print("reply time: posminid did not listen on \(socket)\n")
        return
    }
    defer { client.close() }
    // The greeting.
    _ = try? client.next(timeout: 10); _ = try? client.next(timeout: 10)

    var times: [Double] = []
    var firstSwipes: Int?, lastSwipes = 0
    for _ in 0..<requests {
        let sent = monotonicSeconds()
        guard (try? client.send(["cmd": "status"])) != nil else { break }
        var reply: JSONValue?
        while let message = try? client.next(timeout: 10) {
            if message["class"] == "STATUS" { reply = message; break }
        }
        guard let reply else { break }
        times.append(monotonicSeconds() - sent)
        let swipes = Int(reply["counters"]?["swipes"]?.numberValue ?? 0)
        if firstSwipes == nil { firstSwipes = swipes }
        lastSwipes = swipes
    }
    print("| `status` while a flat-out replay floods the daemon (posminid release, \(times.count) requests) | value |")
    print("| --- | ---: |")
    if !times.isEmpty {
        print("| reply time, median | \(fmt(median(times) * 1_000, 2)) ms |")
        print("| reply time, max | \(fmt(times.max()! * 1_000, 2)) ms |")
    }
    print("| swipes the daemon handled meanwhile (STATUS `swipes`) | \(lastSwipes - (firstSwipes ?? 0)) |")
    print("")
}
