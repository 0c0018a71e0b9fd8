import AudioFile
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
    guard access(executable, X_OK) == 0 else {
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
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    guard let client = LineClient(path: socket, tries: 400) else {
        print("reply time: posminid did not listen on \(socket)\n")
        return
    }
    defer { client.close() }
    // The greeting.
    _ = client.line(timeout: 10); _ = client.line(timeout: 10)

    var times: [Double] = []
    var firstSwipes: Int?, lastSwipes = 0
    for _ in 0..<requests {
        let sent = monotonicSeconds()
        guard client.send("{\"cmd\":\"status\"}\n") else { break }
        var reply: String?
        while let line = client.line(timeout: 10) {
            if line.contains("\"class\":\"STATUS\"") { reply = line; break }
        }
        guard let reply else { break }
        times.append(monotonicSeconds() - sent)
        let swipes = jsonCounter("swipes", in: reply) ?? 0
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

/// The number after `"name":` in a JSON line (the benchmark's only parsing need).
private func jsonCounter(_ name: String, in line: String) -> Int? {
    guard let range = line.firstRange(of: "\"\(name)\":") else { return nil }
    return Int(line[range.upperBound...].prefix { $0.isNumber })
}

/// A line-oriented Unix-socket client with poll timeouts (just enough for the benchmark).
final class LineClient {
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    init?(path: String, tries: Int) {
        var connected: Int32 = -1
        for _ in 0..<tries {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            guard let (unix, length) = unixSocketAddress(path) else { Glibc.close(fd); return nil }
            var address = unix
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if rc == 0 { connected = fd; break }
            Glibc.close(fd)
            usleep(25_000)
        }
        guard connected >= 0 else { return nil }
        descriptor = connected
    }

    func close() { Glibc.close(descriptor) }

    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } == bytes.count
    }

    /// The next line, or nil after `timeout` seconds without one (or at the end).
    func line(timeout: Double) -> String? {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return nil }
            var p = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1_000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard n > 0 else { return nil }
            buffer += chunk[0..<n]
        }
    }
}
