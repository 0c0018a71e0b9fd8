#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sample encodings a capture source delivers (little-endian, interleaved).
public enum CaptureFormat: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case s16le = "S16_LE"
    /// 24-bit samples in the low three bytes of 32-bit words.
    case s24le = "S24_LE"
    case s32le = "S32_LE"
    case float32le = "FLOAT_LE"

    public var bytesPerSample: Int { self == .s16le ? 2 : 4 }
    public var description: String { rawValue }

    /// Converts `count` samples at `raw` to Float in [-1, 1).
    func convert(_ raw: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .s16le:
            let p = raw.assumingMemoryBound(to: Int16.self)
            for i in 0..<count { out[i] = Float(Int16(littleEndian: p[i])) * (1 / 32_768) }
        case .s24le:
            let p = raw.assumingMemoryBound(to: Int32.self)
            // Sign-extend the low 24 bits.
            for i in 0..<count { out[i] = Float((Int32(littleEndian: p[i]) << 8) >> 8) * (1 / 8_388_608) }
        case .s32le:
            let p = raw.assumingMemoryBound(to: Int32.self)
            for i in 0..<count { out[i] = Float(Int32(littleEndian: p[i])) * (1 / 2_147_483_648) }
        case .float32le:
            let p = raw.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: p[i])) }
        }
    }
}

/// Why a capture ended on its own.
public enum CaptureEnd: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file source reached its end.
    case endOfSource
    /// The device went away (unplugged, driver gone, sound server stopped).
    case deviceGone(ALSAError)
    /// Any other error the source cannot recover from.
    case failed(String)

    public var description: String {
        switch self {
        case .endOfSource: "end of the source"
        case .deviceGone(let error): "the reader is gone (\(error))"
        case .failed(let message): message
        }
    }
}

/// What the capture thread waits on and reads from: a sound card or a file.
///
/// `waitForData` and `read` are called from the capture thread only, and must not allocate,
/// lock or log: they run once per period for as long as the reader is plugged in.
public protocol CaptureSource: AnyObject, Sendable {
    var sampleRate: Int { get }
    var channels: Int { get }
    /// Frames per read (about 10 ms).
    var periodFrames: Int { get }
    /// A device keeps its own time: when the consumer falls behind, samples are dropped (and
    /// counted). A file played as fast as possible waits for the consumer instead.
    var isRealTime: Bool { get }
    /// Overruns the source recovered from (a device's buffer filled before it was read).
    var overruns: Int { get }
    /// A name for logs and events ("hw:CARD=Device,DEV=0", "swipe.wav").
    var name: String { get }
    /// Starts the stream (a device starts capturing).
    func start() throws(CaptureEnd)
    /// Waits until data can be read or `stop` is signalled; returns false when stopped.
    func waitForData(stop: EventFD) -> Bool
    /// Reads up to `frames` interleaved frames as Float into `buffer` (room for
    /// `frames × channels`); returns the frames read (0: nothing yet). Throws when the source
    /// has ended.
    func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(CaptureEnd) -> Int
    /// Releases the device or file. Idempotent.
    func close()
}
