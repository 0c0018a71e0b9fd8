import Testing
import PosminiConfig
import PosminiProtocol
import ReaderPipeline
import SwipeDecoder
@testable import PosminiDaemon
@testable import PosminiDiagnose

/// The pieces the daemon and its tools share: one `key = value` reader for four files, one
/// encoder of a swipe's figures, and diagnose's checks apart from its probes.
@Suite("Shared: the key = value reader, the swipe figures, diagnose's checks")
struct SharedFilesTests {
    func entries(_ text: String, _ comments: KeyValueText.Comments, sections: Bool = false) throws -> [(String, String, Int, Bool)] {
        let bytes = Array(text.utf8)
        return try KeyValueText.entries(bytes, comments: comments, sections: sections).map {
            (KeyValueText.string(bytes, $0.name), KeyValueText.string(bytes, $0.value), $0.line, $0.isSection)
        }
    }

    @Test("names and values without their blanks, CRLF lines, comments by file: `#` anywhere (configuration, list) or whole lines only (key file, counter); sections where allowed")
    func reads() throws {
        let text = "# header\n\n  rate = 44100  # the default\r\nsocket=/run/x.sock\n\tnote = a # b\n"
        let anywhere = try entries(text, .anywhere)
        #expect(anywhere.map(\.0) == ["rate", "socket", "note"])
        #expect(anywhere.map(\.1) == ["44100", "/run/x.sock", "a"])
        #expect(anywhere.map(\.2) == [3, 4, 5])
        let whole = try entries(text, .wholeLine)
        #expect(whole.map(\.1) == ["44100  # the default", "/run/x.sock", "a # b"])
        let list = try entries("[Good Adapter]\nusb = 0d8c:0014\n[Other]\ncard = X*\n", .anywhere, sections: true)
        #expect(list.map(\.0) == ["Good Adapter", "usb", "Other", "card"] && list.map(\.3) == [true, false, true, false])
        // A value may hold '=' (a base64 value, a path): the first '=' splits.
        #expect(try entries("k = a=b\n", .wholeLine).first?.1 == "a=b")
        #expect(try entries("empty =\n", .wholeLine).first?.1 == "")
    }

    @Test("refused with the line: a line without '=', a section where none is allowed or an empty one",
          arguments: [("rate = 1\njust words\n", false, 2, "expected 'key = value'"),
                      ("[Adapter]\n", false, 1, "expected 'key = value'"),
                      ("[]\n", true, 1, "a section is [name]"),
                      ("[open\n", true, 1, "a section is [name]")])
    func refused(_ text: String, _ sections: Bool, _ line: Int, _ message: String) {
        do {
            _ = try KeyValueText.entries(Array(text.utf8), comments: .anywhere, sections: sections)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.line == line && error.message == message, "\(error)")
        }
    }

    @Test("the four files read through it: the configuration names the line, the list its section, the counter is corrupt without '='")
    func fourFiles() throws {
        #expect(throws: DaemonConfiguration.Failure.self) { try DaemonConfiguration.parse("rate = 44100\nwords\n", file: "c.conf") }
        let c = try DaemonConfiguration.parse("rate = 48000 # a comment\r\n", file: "c.conf")
        #expect(c.rate == 48_000)
        let list = try CompatibilityList.parse("[A]\nusb = 0D8C:0014\nverdict = bad\n", file: "l")
        #expect(list.first?.usb == ["0d8c:0014"] && list.first?.verdict == .bad)
        do {
            _ = try CompatibilityList.parse("usb = 0d8c:0014\n", file: "l")
            Issue.record("a setting before a section was accepted")
        } catch {
            #expect(error.description == "l:1: a setting before the first [Device name]")
        }
    }

    @Test("one encoder: decode --json's quality and a CARD's are the same figures, to the same tenth")
    func oneEncoder() throws {
        let swipe = decodedSwipe()
        let figures = SwipeFigures(swipe)
        let decodeJSON = figures.json(file: "f.wav")
        let card = CardMessage.card(swipe, reader: "r", reference: nil)
        #expect(decodeJSON["quality"]?["snr_db"]?.numberValue == card.quality.snrDB)
        #expect(decodeJSON["speed_cm_s"]?["mean"]?.numberValue == card.quality.speedCmPerSecond)
        #expect(decodeJSON["direction"]?.stringValue == card.quality.direction)
        #expect(decodeJSON["tracks"]?.arrayValue?.first?["masked"] == card.tracks.first.map { .string($0.masked ?? "") })
        #expect(card.quality.snrDB == (swipe.quality.snrDB * 10).rounded() / 10)
        // No clear track anywhere in what the encoder writes.
        #expect(!decodeJSON.text.contains("4111111111111111") && !Reply.card(card).json.text.contains("4111111111111111"))
        let failed = CardMessage.failed(decodedSwipe(cut: true), reader: "r", reference: "o")
        #expect(failed.reason != "" && failed.quality == SwipeFigures(decodedSwipe(cut: true)).summary)
    }

    @Test("permissions are judged from the probe's figures alone")
    func permissionChecks() {
        func probe(socket: UInt32?, group: String?, state: UInt32?, key: UInt32?, refused: [String] = []) -> PermissionsProbe {
            PermissionsProbe(user: "tech", deviceNodes: ["/dev/snd/controlC1", "/dev/snd/pcmC1D0c"], refusedNodes: refused,
                             socket: .init(path: "/run/posmini.sock", mode: socket, group: group),
                             stateDirectory: .init(path: "/var/lib/posminid", mode: state), keyFile: .init(path: "/etc/posminid/key", mode: key))
        }
        func statuses(_ p: PermissionsProbe) -> [String: DiagnoseCheck.Status] {
            Dictionary(uniqueKeysWithValues: Checks.permissions(p, socketGroup: "posmini").map { ($0.id, $0.status) })
        }
        let good = statuses(probe(socket: 0o660, group: "posmini", state: 0o700, key: 0o600))
        #expect(good == ["permissions.device": .pass, "permissions.socket": .pass, "permissions.state": .pass, "permissions.key": .pass])
        let bad = statuses(probe(socket: 0o666, group: "posmini", state: 0o755, key: 0o644, refused: ["/dev/snd/pcmC1D0c"]))
        #expect(bad == ["permissions.device": .fail, "permissions.socket": .warn, "permissions.state": .warn, "permissions.key": .fail])
        #expect(statuses(probe(socket: 0o660, group: "users", state: nil, key: nil))["permissions.socket"] == .warn)
        let none = statuses(probe(socket: nil, group: nil, state: nil, key: nil))
        #expect(none["permissions.socket"] == .notApplicable && none["permissions.key"] == .notApplicable)
    }

    @Test("the idle input is judged from its figures: quiet passes; silence, noise, hum, clipping, offset and overruns are named")
    func idleChecks() {
        func statuses(_ f: [IdleFigures], overruns: Int = 0) -> [String: DiagnoseCheck.Status] {
            Dictionary(uniqueKeysWithValues: Checks.idle(f, overruns: overruns, seconds: 2).map { ($0.id, $0.status) })
        }
        let quiet = IdleFigures(dcOffset: 0.001, noiseDBFS: -70, humDBFS: -80, humFrequency: 50, clippedSamples: 0, peakDBFS: -55)
        #expect(Set(statuses([quiet]).values) == [.pass])
        let noisy = IdleFigures(dcOffset: 0.25, noiseDBFS: -30, humDBFS: -30, humFrequency: 60, clippedSamples: 12, peakDBFS: 0)
        let bad = statuses([quiet, noisy], overruns: 2)
        #expect(bad["idle.noise_floor"] == .fail && bad["idle.hum"] == .warn && bad["idle.clipping"] == .fail)
        #expect(bad["idle.dc_offset"] == .fail && bad["idle.dropouts"] == .warn)
        let silent = IdleFigures(dcOffset: 0, noiseDBFS: -200, humDBFS: -200, humFrequency: 50, clippedSamples: 0, peakDBFS: -200)
        #expect(statuses([silent])["idle.noise_floor"] == .warn)
        #expect(statuses([]) == ["idle.signal": .fail])
        // Each threshold at its edge.
        func with(noise: Double = -70, dc: Double = 0, hum: Double = -80) -> IdleFigures {
            IdleFigures(dcOffset: dc, noiseDBFS: noise, humDBFS: hum, humFrequency: 50, clippedSamples: 0, peakDBFS: -30)
        }
        #expect(statuses([with(noise: DiagnoseLimits.noisePassDBFS)])["idle.noise_floor"] == .pass)
        #expect(statuses([with(noise: DiagnoseLimits.noisePassDBFS + 0.1)])["idle.noise_floor"] == .warn)
        #expect(statuses([with(noise: DiagnoseLimits.noiseWarnDBFS)])["idle.noise_floor"] == .warn)
        #expect(statuses([with(noise: DiagnoseLimits.noiseWarnDBFS + 0.1)])["idle.noise_floor"] == .fail)
        #expect(statuses([with(dc: DiagnoseLimits.dcWarn - 0.001)])["idle.dc_offset"] == .pass)
        #expect(statuses([with(dc: -DiagnoseLimits.dcWarn)])["idle.dc_offset"] == .pass, "an edge takes the better verdict")
        #expect(statuses([with(dc: -DiagnoseLimits.dcWarn - 0.001)])["idle.dc_offset"] == .warn)
        #expect(statuses([with(dc: DiagnoseLimits.dcFail)])["idle.dc_offset"] == .warn)
        #expect(statuses([with(dc: DiagnoseLimits.dcFail + 0.001)])["idle.dc_offset"] == .fail)
        #expect(statuses([with(hum: DiagnoseLimits.humPassDBFS)])["idle.hum"] == .pass)
        #expect(statuses([with(hum: DiagnoseLimits.humPassDBFS + 0.1)])["idle.hum"] == .warn)
    }

    @Test("every single-figure check of the table at its edges: an edge takes the better verdict, a step past it the worse")
    func checkTableEdges() {
        #expect(CheckTable.all.count == Set(CheckTable.all.map(\.id)).count, "one rule per id")
        for rule in CheckTable.all {
            let bands = rule.bands
            let worse = bands.better == .lower ? 0.001 : -0.001
            #expect(bands.verdict(bands.pass) == .pass, "\(rule.id) at its pass edge")
            #expect(bands.verdict(bands.pass - worse * 1000) == .pass, "\(rule.id) well inside")
            if let fail = bands.fail {
                #expect(bands.verdict(fail + worse) == .fail, "\(rule.id) past its fail edge")
                if fail != bands.pass {
                    #expect(bands.verdict(bands.pass + worse) == .warn, "\(rule.id) past its pass edge")
                    #expect(bands.verdict(fail) == .warn, "\(rule.id) at its fail edge")
                }
            } else {
                #expect(bands.verdict(bands.pass + worse) == .warn, "\(rule.id) past its pass edge")
                #expect(bands.verdict(bands.pass + worse * 1e6) == .warn, "\(rule.id) never fails")
            }
            #expect(!rule.advice.isEmpty && !rule.title.isEmpty && !rule.unit.isEmpty)
        }
        // The advice is filled from the figures.
        let dc = CheckTable.dcOffset.check(0.25, shown: 25, context: ["percent": "25"])
        #expect(dc.status == .fail && dc.advice?.hasPrefix("the input sits 25 % off centre") == true)
        #expect(CheckTable.hum.check(-20, shown: -20, context: ["frequency": "60"]).advice?.hasPrefix("60 Hz hum") == true)
        #expect(CheckTable.swipeSNR.check(SwipeLimits.noisySNR - 0.1, shown: 13.9).status == .fail,
                "swipe.snr fails where the decoder calls the swipe noisy")
        #expect(CheckTable.swipeSNR.check(SwipeLimits.noisySNR, shown: 14).status == .warn)
    }

    @Test("diagnose fails a swipe where the decoder fails the read, and warns earlier")
    func swipeLimitsAgree() {
        #expect(DiagnoseLimits.snrFail == SwipeLimits.noisySNR && DiagnoseLimits.snrPass > SwipeLimits.noisySNR)
        #expect(DiagnoseLimits.clipWarnFraction < SwipeLimits.clippedFraction)
        #expect(DiagnoseLimits.weakWarnPeakDBFS > SwipeLimits.weakPeakDBFS)
        #expect(DiagnoseLimits.unevenWarnRatio < SwipeLimits.unevenSpeedRatio && DiagnoseLimits.jitterPass < SwipeLimits.unevenJitter)
    }
}
