import PosminiProtocol
import SwipeDecoder

/// Diagnose's thresholds, named once (docs/DIAGNOSE.md lists them). A swipe check fails where
/// the decoder fails the read (`SwipeLimits`); it warns earlier, leaving room for a worn card
/// or a hurried hand.
enum DiagnoseLimits {
    // The swipe.
    /// Warn at half the clipped fraction that fails a read.
    static let clipWarnFraction = SwipeLimits.clippedFraction / 2
    /// A peak this close to full scale (dBFS) has clipped somewhere.
    static let clipPeakDBFS = -0.2
    /// Warn below this peak (dBFS): 6 dB above the level under which the decoder calls a failed
    /// swipe `weakSignal`, room for a weaker card.
    static let weakWarnPeakDBFS = SwipeLimits.weakPeakDBFS + 6
    /// Pass at this SNR (dB) or more: 6 dB above the decoder's `noisy` limit.
    static let snrPass = SwipeLimits.noisySNR + 6
    /// Fail below this SNR (dB): where the decoder calls the swipe `noisy`.
    static let snrFail = SwipeLimits.noisySNR
    /// Warn when the fastest moment came within this fraction of the fastest the device reads.
    static let fastWarnFraction = 0.8
    /// Warn when the speed changed more than this many times over within the swipe (the
    /// decoder calls a failed swipe `unevenSpeed` at `SwipeLimits.unevenSpeedRatio`).
    static let unevenWarnRatio = 2.5
    /// Pass below this jitter (fraction of a cell; the decoder fails at `SwipeLimits.unevenJitter`).
    static let jitterPass = 0.1

    // The idle input.
    /// DC offset, fraction of full scale: warn at this, fail at `dcFail` (a biased input).
    static let dcWarn = 0.03
    static let dcFail = 0.2
    /// Noise floor (dBFS RMS): pass at or below `noisePass`, warn to `noiseWarn`, fail above.
    static let noisePassDBFS = -50.0
    static let noiseWarnDBFS = -35.0
    /// Below this (dBFS) the input is digital silence: muted or not the reader's input.
    static let silenceDBFS = -100.0
    /// Mains hum (dBFS): warn above.
    static let humPassDBFS = -45.0
}

/// A figure's bands: where it passes, warns and fails. A figure exactly at an edge takes the
/// better verdict.
struct Bands: Sendable, Hashable {
    enum Better: Sendable, Hashable { case lower, higher }
    var better: Better
    /// The edge of passing.
    var pass: Double
    /// The edge of failing; nil: past `pass` the figure only warns.
    var fail: Double?

    static func lower(pass: Double, fail: Double? = nil) -> Bands { Bands(better: .lower, pass: pass, fail: fail) }
    static func higher(pass: Double, fail: Double? = nil) -> Bands { Bands(better: .higher, pass: pass, fail: fail) }

    func verdict(_ x: Double) -> DiagnoseCheck.Status {
        // Distance past an edge, positive where it is worse.
        func past(_ edge: Double) -> Bool { better == .lower ? x > edge : x < edge }
        if !past(pass) { return .pass }
        if let fail, past(fail) { return .fail }
        return .warn
    }
}

/// One check of a single figure, as data: its id, title, unit, bands and advice.
struct CheckRule: Sendable, Hashable {
    var id: String
    var title: String
    var unit: String
    var bands: Bands
    /// What to do when it does not pass; `{name}` is filled from the figures (`context`).
    var advice: String

    /// The check for `figure` (judged), shown as `shown` (rounded, or in the unit people read).
    func check(_ figure: Double, shown: Double, context: [String: String] = [:]) -> DiagnoseCheck {
        var text = advice
        for (key, value) in context { text = text.replacing("{\(key)}", with: value) }
        return DiagnoseCheck(id, title, bands.verdict(figure), value: .number(shown), unit: unit, advice: text)
    }
}

/// The single-figure checks of diagnose, evaluated by `Checks` over measured figures.
/// docs/DIAGNOSE.md lists them.
enum CheckTable {
    static let dcOffset = CheckRule(
        id: "idle.dc_offset", title: "DC offset", unit: "% FS",
        bands: .lower(pass: DiagnoseLimits.dcWarn, fail: DiagnoseLimits.dcFail),
        advice: "the input sits {percent} % off centre: a biased or faulty input (a headset-mic bias into the reader?); try the reader on a dedicated adapter")
    static let noiseFloor = CheckRule(
        id: "idle.noise_floor", title: "Noise floor", unit: "dBFS RMS",
        bands: .lower(pass: DiagnoseLimits.noisePassDBFS, fail: DiagnoseLimits.noiseWarnDBFS),
        advice: "the idle input is noisy: lower the mic boost, keep the reader cable away from chargers and power supplies, or try another port")
    static let hum = CheckRule(
        id: "idle.hum", title: "Mains hum", unit: "dBFS",
        bands: .lower(pass: DiagnoseLimits.humPassDBFS),
        advice: "{frequency} Hz hum from the mains: unplug the terminal's charger for the test, or use a ground-isolated adapter")
    static let idleClipping = CheckRule(
        id: "idle.clipping", title: "Idle clipping", unit: "samples",
        bands: .lower(pass: 0, fail: 0),
        advice: "the input clips with no card in the reader: lower the capture volume and mic boost, and check that the reader is what is plugged in")
    static let dropouts = CheckRule(
        id: "idle.dropouts", title: "Dropouts", unit: "overruns",
        bands: .lower(pass: 0),
        advice: "audio was lost (the system did not read in time): close other heavy programs; the daemon can ask for real-time priority (realtime_priority)")
    static let swipeSNR = CheckRule(
        id: "swipe.snr", title: "Swipe signal to noise", unit: "dB",
        bands: .higher(pass: DiagnoseLimits.snrPass, fail: DiagnoseLimits.snrFail),
        advice: "the pulses barely stand above the noise: raise the mic boost, and keep the reader away from chargers and power supplies")
    static let jitter = CheckRule(
        id: "swipe.jitter", title: "Bit timing jitter", unit: "% of a cell",
        bands: .lower(pass: DiagnoseLimits.jitterPass),
        advice: "the bit timing wanders: swipe evenly with the stripe pressed against the head")

    static let all = [dcOffset, noiseFloor, hum, idleClipping, dropouts, swipeSNR, jitter]
}

/// The verdicts of diagnose: figures from the probes in, `DiagnoseCheck`s out. Pure: no
/// device, file or clock is touched here (the probes did that), so each rule is tested on
/// figures alone.
enum Checks {
    /// Device nodes, socket, state directory and key file.
    static func permissions(_ p: PermissionsProbe, socketGroup: String) -> [DiagnoseCheck] {
        var out: [DiagnoseCheck] = []
        if let nodes = p.deviceNodes {
            out.append(DiagnoseCheck("permissions.device", "Device access", p.refusedNodes.isEmpty ? .pass : .fail,
                                     value: .string(p.refusedNodes.isEmpty ? "\(p.user) may open \(nodes[nodes.count - 1])" : "\(p.user) may not open \(p.refusedNodes.joined(separator: ", "))"),
                                     advice: "a marked reader adapter's nodes belong to group posminid (the udev rules), a headset jack's to group audio: run `sudo posminid --diagnose`, or add the technician to that group (`usermod -aG posminid \(p.user)` or `-aG audio`, then log in again) and to admin_group, which lets diagnose ask the daemon to release the reader"))
        } else {
            out.append(DiagnoseCheck("permissions.device", "Device access", .notApplicable, value: "not a sound card's device"))
        }
        let socket = p.socket
        if let mode = socket.mode {
            let ok = mode == 0o660 && socket.group == socketGroup
            out.append(DiagnoseCheck("permissions.socket", "Socket access", ok ? .pass : .warn,
                                     value: .string("\(socket.path) mode \(String(mode, radix: 8)) group \(socket.group ?? "?")"),
                                     advice: "the socket should be mode 660, group \(socketGroup) (posminid.socket sets this): `systemctl restart posminid.socket`"))
        } else {
            out.append(DiagnoseCheck("permissions.socket", "Socket access", .notApplicable, value: .string("no socket at \(socket.path): posminid is not running")))
        }
        let state = p.stateDirectory
        if let mode = state.mode {
            out.append(DiagnoseCheck("permissions.state", "State directory", mode & 0o077 == 0 ? .pass : .warn,
                                     value: .string("\(state.path) mode \(String(mode, radix: 8))"),
                                     advice: "the state directory holds the key counter: `chmod 700 \(state.path)`"))
        } else {
            out.append(DiagnoseCheck("permissions.state", "State directory", .notApplicable, value: .string("\(state.path) does not exist yet")))
        }
        let key = p.keyFile
        if let mode = key.mode {
            out.append(DiagnoseCheck("permissions.key", "Key file", mode & 0o077 == 0 ? .pass : .fail,
                                     value: .string("\(key.path) mode \(String(mode, radix: 8))"),
                                     advice: "the daemon refuses a key others can read: `chmod 600 \(key.path)`"))
        } else {
            out.append(DiagnoseCheck("permissions.key", "Key file", .notApplicable,
                                     value: .string("no key file at \(key.path) (a systemd credential, or --test-key)")))
        }
        return out
    }

    /// The idle input: one figure set per channel, the overruns while it was read.
    static func idle(_ figures: [IdleFigures], overruns: Int, seconds: Double) -> [DiagnoseCheck] {
        guard let worst = figures.max(by: { $0.noiseDBFS < $1.noiseDBFS }) else {
            return [DiagnoseCheck("idle.signal", "Idle signal", .fail, value: "no audio arrived",
                                  advice: "the device delivered nothing in \(Int(seconds)) s: replug it, or check that nothing else holds it")]
        }
        var out: [DiagnoseCheck] = []
        let dc = figures.map(\.dcOffset).max(by: { abs($0) < abs($1) }) ?? 0
        let dcPercent = (dc * 1000).rounded() / 10
        out.append(CheckTable.dcOffset.check(abs(dc), shown: dcPercent, context: ["percent": format1(dcPercent)]))
        let noise = (worst.noiseDBFS * 10).rounded() / 10
        if worst.noiseDBFS < DiagnoseLimits.silenceDBFS {
            out.append(DiagnoseCheck("idle.noise_floor", "Noise floor", .warn, value: .number(noise), unit: "dBFS",
                                     advice: "the input is digital silence: it is muted, or not the reader's input (check the mixer and input source)"))
        } else {
            out.append(CheckTable.noiseFloor.check(worst.noiseDBFS, shown: noise))
        }
        let hum = figures.map(\.humDBFS).max() ?? -200
        out.append(CheckTable.hum.check(hum, shown: max(-200, (hum * 10).rounded() / 10),
                                        context: ["frequency": "\(worst.humFrequency)"]))
        let clipped = Double(figures.map(\.clippedSamples).reduce(0, +))
        out.append(CheckTable.idleClipping.check(clipped, shown: clipped))
        out.append(CheckTable.dropouts.check(Double(overruns), shown: Double(overruns)))
        return out
    }
}
