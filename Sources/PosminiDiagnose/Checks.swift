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
    /// Warn below this peak (dBFS): 14 dB above the decoder's `weakSignal` limit, room for a
    /// weaker card.
    static let weakWarnPeakDBFS = SwipeLimits.weakPeakDBFS + 14
    /// Pass at this SNR (dB) or more: 6 dB above the decoder's `noisy` limit.
    static let snrPass = SwipeLimits.noisySNR + 6
    /// Fail below this SNR (dB): where the decoder calls the swipe `noisy`.
    static let snrFail = SwipeLimits.noisySNR
    /// Warn when the fastest moment came within this fraction of the fastest the device reads.
    static let fastWarnFraction = 0.8
    /// Warn when the speed changed more than this many times over within the swipe (the
    /// decoder fails at `SwipeLimits.unevenSpeedRatio`).
    static let unevenWarnRatio = 3.0
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
        out.append(DiagnoseCheck("idle.dc_offset", "DC offset", abs(dc) < DiagnoseLimits.dcWarn ? .pass : (abs(dc) < DiagnoseLimits.dcFail ? .warn : .fail),
                                 value: .number(dcPercent), unit: "% FS",
                                 advice: "the input sits \(format1(dcPercent)) % off centre: a biased or faulty input (a headset-mic bias into the reader?); try the reader on a dedicated adapter"))
        let noise = (worst.noiseDBFS * 10).rounded() / 10
        if worst.noiseDBFS < DiagnoseLimits.silenceDBFS {
            out.append(DiagnoseCheck("idle.noise_floor", "Noise floor", .warn, value: .number(noise), unit: "dBFS",
                                     advice: "the input is digital silence: it is muted, or not the reader's input (check the mixer and input source)"))
        } else {
            out.append(DiagnoseCheck("idle.noise_floor", "Noise floor", worst.noiseDBFS <= DiagnoseLimits.noisePassDBFS ? .pass : (worst.noiseDBFS <= DiagnoseLimits.noiseWarnDBFS ? .warn : .fail),
                                     value: .number(noise), unit: "dBFS RMS",
                                     advice: "the idle input is noisy: lower the mic boost, keep the reader cable away from chargers and power supplies, or try another port"))
        }
        let hum = figures.map(\.humDBFS).max() ?? -200
        let humRounded = (hum * 10).rounded() / 10
        out.append(DiagnoseCheck("idle.hum", "Mains hum", hum <= DiagnoseLimits.humPassDBFS ? .pass : .warn, value: .number(max(-200, humRounded)), unit: "dBFS",
                                 advice: "\(worst.humFrequency) Hz hum from the mains: unplug the terminal's charger for the test, or use a ground-isolated adapter"))
        let clipped = figures.map(\.clippedSamples).reduce(0, +)
        out.append(DiagnoseCheck("idle.clipping", "Idle clipping", clipped == 0 ? .pass : .fail, value: .number(Double(clipped)), unit: "samples",
                                 advice: "the input clips with no card in the reader: lower the capture volume and mic boost, and check that the reader is what is plugged in"))
        out.append(DiagnoseCheck("idle.dropouts", "Dropouts", overruns == 0 ? .pass : .warn, value: .number(Double(overruns)), unit: "overruns",
                                 advice: "audio was lost (the system did not read in time): close other heavy programs; the daemon can ask for real-time priority (realtime_priority)"))
        return out
    }
}
