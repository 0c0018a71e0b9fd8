import CALSA
import AudioFile
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed libasound call: which call, on which device, the (negative) error code ALSA
/// returned, and `snd_strerror`'s text, with advice where there is something to do.
public struct ALSAError: Error, Sendable, Hashable, CustomStringConvertible {
    public var device: String
    public var call: String
    /// Negative errno as libasound returns it (-ENOENT, -EBUSY, -ENODEV, …).
    public var code: Int32
    /// Set when the failure is the sample rate: the rate asked for, or the one the device
    /// settled on, is outside `SampleRate.supported` (`code` is then -EINVAL).
    public var unsupportedRate: Int?

    public init(device: String, call: String, code: Int32) {
        self.device = device
        self.call = call
        self.code = code
    }

    /// The rate `rate` refused at `call` (the request, or the negotiation's result).
    public static func unsupportedRate(_ rate: Int, device: String, call: String) -> ALSAError {
        var error = ALSAError(device: device, call: call, code: -EINVAL)
        error.unsupportedRate = rate
        return error
    }

    public var message: String {
        guard let text = snd_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// The device is gone: unplugged, its driver unbound, or its sound server stopped.
    public var isDeviceGone: Bool {
        [ENODEV, EBADFD, ENXIO, ESHUTDOWN, ENOTCONN, EIO].contains(-code)
    }

    public var description: String {
        if let rate = unsupportedRate {
            return "ALSA device '\(device)': \(UnsupportedSampleRate(rate: rate)) (\(call)); ask for a rate in that range "
                + "(--rate, or rate= in the configuration), or use a device that offers one "
                + "(`arecord -D \(device) --dump-hw-params /dev/null` lists its rates)"
        }
        var text = "ALSA device '\(device)': \(call) failed: \(message) (errno \(-code))"
        switch -code {
        case ENOENT:
            text += "; no such PCM: check the name with `arecord -L` (or `arecord -l` for hw: cards)"
        case EBUSY:
            text += "; another program holds the device, usually the desktop's sound server (PulseAudio or "
                + "PipeWire): use a dedicated USB adapter that the posminid udev rules keep away from it, "
                + "or tell the sound server to leave this capture device alone (see README, \"Sound servers\")"
        case EACCES, EPERM:
            text += "; the service user needs to be in the 'audio' group"
        default: break
        }
        return text
    }
}

/// What a capture device offers.
public struct CaptureCapabilities: Sendable, Hashable {
    public var formats: [String] = []
    public var rates: ClosedRange<Int>?
    public var channels: ClosedRange<Int>?
    public init() {}
}

/// Capture from an ALSA PCM by name (`hw:CARD=Device,DEV=0`, `plughw:1,0`, `default`, `pulse`,
/// or any name the configuration defines). Non-blocking: the capture thread sleeps in `poll()`
/// on the PCM's descriptors and the stop eventfd together.
public final class ALSACapture: CaptureSource, @unchecked Sendable {
    public let name: String
    public let sampleRate: Int
    public let channels: Int
    public let format: CaptureFormat
    public let periodFrames: Int
    public let bufferFrames: Int
    public let isRealTime = true
    /// What the device offered before anything was chosen (for diagnose).
    public let capabilities: CaptureCapabilities
    private let overrunCount = Atomic<Int>(0)
    public var overruns: Int { overrunCount.load(ordering: .relaxed) }

    private var pcm: OpaquePointer?
    /// One period of raw frames, allocated once.
    private let raw: UnsafeMutableRawPointer
    /// The PCM's poll descriptors plus the stop eventfd (last), allocated once.
    private let pollSet: UnsafeMutablePointer<pollfd>
    private let pcmDescriptors: Int

    /// Opens `device` for capture and negotiates: the first of S16_LE, S32_LE, S24_LE, FLOAT_LE
    /// the device takes; `rate` or the nearest it offers (never resampled by ALSA); one channel
    /// if it can, else the fewest it offers (each decoded as its own head); periods of about
    /// `periodTime` seconds and a buffer of at least `periods` of them.
    public init(device: String, rate: Int = 44_100, periodTime: Double = 0.01, periods: Int = 8) throws(ALSAError) {
        name = device
        // Refused before it reaches UInt32 (a negative or huge request would trap) or the device.
        guard SampleRate.supported.contains(rate) else { throw .unsupportedRate(rate, device: device, call: "requested rate") }
        posmini_alsa_quiet()
        var handle: OpaquePointer?
        var rc = snd_pcm_open(&handle, device, SND_PCM_STREAM_CAPTURE, SND_PCM_NONBLOCK)
        guard rc == 0, let handle else { throw ALSAError(device: device, call: "snd_pcm_open", code: rc) }
        func fail(_ call: String, _ code: Int32) -> ALSAError {
            snd_pcm_close(handle)
            return ALSAError(device: device, call: call, code: code)
        }

        var hw: OpaquePointer?
        snd_pcm_hw_params_malloc(&hw)
        defer { snd_pcm_hw_params_free(hw) }
        rc = snd_pcm_hw_params_any(handle, hw)
        guard rc >= 0 else { throw fail("snd_pcm_hw_params_any", rc) }
        rc = snd_pcm_hw_params_set_access(handle, hw, SND_PCM_ACCESS_RW_INTERLEAVED)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_access", rc) }
        // The decoder is rate-independent: take the device's rate rather than have ALSA convert.
        _ = snd_pcm_hw_params_set_rate_resample(handle, hw, 0)

        var offered = CaptureCapabilities()
        let named: [(String, snd_pcm_format_t)] = [
            ("S16_LE", SND_PCM_FORMAT_S16_LE), ("S24_LE", SND_PCM_FORMAT_S24_LE), ("S24_3LE", SND_PCM_FORMAT_S24_3LE),
            ("S32_LE", SND_PCM_FORMAT_S32_LE), ("FLOAT_LE", SND_PCM_FORMAT_FLOAT_LE), ("U8", SND_PCM_FORMAT_U8),
        ]
        offered.formats = named.filter { snd_pcm_hw_params_test_format(handle, hw, $0.1) == 0 }.map(\.0)
        var low: UInt32 = 0, high: UInt32 = 0, dir: Int32 = 0
        if snd_pcm_hw_params_get_rate_min(hw, &low, &dir) == 0, snd_pcm_hw_params_get_rate_max(hw, &high, &dir) == 0 {
            offered.rates = Int(low)...Int(max(low, high))
        }
        if snd_pcm_hw_params_get_channels_min(hw, &low) == 0, snd_pcm_hw_params_get_channels_max(hw, &high) == 0 {
            offered.channels = Int(low)...Int(max(low, high))
        }
        capabilities = offered

        let preference: [(CaptureFormat, snd_pcm_format_t)] = [
            (.s16le, SND_PCM_FORMAT_S16_LE), (.s32le, SND_PCM_FORMAT_S32_LE),
            (.s24le, SND_PCM_FORMAT_S24_LE), (.float32le, SND_PCM_FORMAT_FLOAT_LE),
        ]
        guard let chosen = preference.first(where: { snd_pcm_hw_params_test_format(handle, hw, $0.1) == 0 }) else {
            throw fail("snd_pcm_hw_params_set_format (none of S16_LE, S32_LE, S24_LE, FLOAT_LE)", -EINVAL)
        }
        rc = snd_pcm_hw_params_set_format(handle, hw, chosen.1)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_format", rc) }

        var channelCount: UInt32 = 1
        if snd_pcm_hw_params_test_channels(handle, hw, 1) != 0 {
            rc = snd_pcm_hw_params_get_channels_min(hw, &channelCount)
            guard rc == 0 else { throw fail("snd_pcm_hw_params_get_channels_min", rc) }
        }
        rc = snd_pcm_hw_params_set_channels(handle, hw, channelCount)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_channels", rc) }

        var actualRate = UInt32(rate)
        var direction: Int32 = 0
        rc = snd_pcm_hw_params_set_rate_near(handle, hw, &actualRate, &direction)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_rate_near", rc) }

        var period = snd_pcm_uframes_t(max(16, Int(Double(actualRate) * periodTime)))
        rc = snd_pcm_hw_params_set_period_size_near(handle, hw, &period, &direction)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_period_size_near", rc) }
        var buffer = period * snd_pcm_uframes_t(max(4, periods))
        rc = snd_pcm_hw_params_set_buffer_size_near(handle, hw, &buffer)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_set_buffer_size_near", rc) }
        rc = snd_pcm_hw_params(handle, hw)
        guard rc == 0 else { throw fail("snd_pcm_hw_params", rc) }
        // The rate the device settled on (the nearest it has, not necessarily the one asked for):
        // the decoder takes only the supported range.
        var negotiated: UInt32 = 0
        rc = snd_pcm_hw_params_get_rate(hw, &negotiated, &direction)
        guard rc == 0 else { throw fail("snd_pcm_hw_params_get_rate", rc) }
        guard SampleRate.supported.contains(Int(negotiated)) else {
            snd_pcm_close(handle)
            throw .unsupportedRate(Int(negotiated), device: device, call: "snd_pcm_hw_params (negotiated rate)")
        }
        actualRate = negotiated
        snd_pcm_hw_params_get_period_size(hw, &period, &direction)
        snd_pcm_hw_params_get_buffer_size(hw, &buffer)

        var sw: OpaquePointer?
        snd_pcm_sw_params_malloc(&sw)
        defer { snd_pcm_sw_params_free(sw) }
        snd_pcm_sw_params_current(handle, sw)
        snd_pcm_sw_params_set_avail_min(handle, sw, period)
        rc = snd_pcm_sw_params(handle, sw)
        guard rc == 0 else { throw fail("snd_pcm_sw_params", rc) }

        let descriptorCount = Int(snd_pcm_poll_descriptors_count(handle))
        guard descriptorCount > 0 else { throw fail("snd_pcm_poll_descriptors_count", -EINVAL) }

        pcm = handle
        format = chosen.0
        channels = Int(channelCount)
        sampleRate = Int(actualRate)
        periodFrames = Int(period)
        bufferFrames = Int(buffer)
        raw = .allocate(byteCount: periodFrames * channels * format.bytesPerSample, alignment: 16)
        pcmDescriptors = descriptorCount
        pollSet = .allocate(capacity: descriptorCount + 1)
        pollSet.initialize(repeating: pollfd(fd: -1, events: 0, revents: 0), count: descriptorCount + 1)
        let filled = snd_pcm_poll_descriptors(handle, pollSet, UInt32(descriptorCount))
        guard filled == descriptorCount else { throw fail("snd_pcm_poll_descriptors", -EINVAL) }
    }

    deinit {
        close()
        raw.deallocate()
        pollSet.deallocate()
    }

    public func start() throws(CaptureEnd) {
        guard let pcm else { throw .failed("ALSA device '\(name)' is closed") }
        let rc = snd_pcm_start(pcm)
        if rc < 0 { throw classify(ALSAError(device: name, call: "snd_pcm_start", code: rc)) }
    }

    public func waitForData(stop: EventFD) -> Bool {
        guard let pcm else { return false }
        pollSet[pcmDescriptors] = pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)
        // A bounded wait: a device that stops delivering without an error is looked at again
        // (the read reports its state) rather than waited on for ever.
        let rc = (try? SystemCall.retrying("poll") { poll(pollSet, nfds_t(pcmDescriptors + 1), 1_000) }) ?? -1
        if pollSet[pcmDescriptors].revents != 0 { return false }
        var events: UInt16 = 0
        if rc > 0 { snd_pcm_poll_descriptors_revents(pcm, pollSet, UInt32(pcmDescriptors), &events) }
        return true
    }

    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(CaptureEnd) -> Int {
        guard let pcm else { throw .failed("ALSA device '\(name)' is closed") }
        let wanted = min(frames, periodFrames)
        let got = snd_pcm_readi(pcm, raw, snd_pcm_uframes_t(wanted))
        if got >= 0 {
            format.convert(raw, count: Int(got) * channels, into: buffer)
            return Int(got)
        }
        let code = Int32(got)
        switch -code {
        case EAGAIN:
            // Woken without a full period (or by the timeout): a stalled or vanished device
            // shows in its state.
            if snd_pcm_state(pcm) == SND_PCM_STATE_DISCONNECTED {
                throw .deviceGone(ALSAError(device: name, call: "snd_pcm_readi", code: -ENODEV))
            }
            return 0
        case EPIPE, ESTRPIPE:
            // Overrun (the buffer filled before we read it) or suspend: recover and go on.
            overrunCount.add(1, ordering: .relaxed)
            let rc = snd_pcm_recover(pcm, code, 1)
            if rc < 0 { throw classify(ALSAError(device: name, call: "snd_pcm_recover", code: rc)) }
            _ = snd_pcm_start(pcm)
            return 0
        default:
            throw classify(ALSAError(device: name, call: "snd_pcm_readi", code: code))
        }
    }

    private func classify(_ error: ALSAError) -> CaptureEnd {
        error.isDeviceGone ? .deviceGone(error) : .failed(error.description)
    }

    public func close() {
        guard let pcm else { return }
        snd_pcm_close(pcm)
        self.pcm = nil
    }
}
