public import DUKPT
import Secrets
public import PosminiConfig
public import SwipeDecoder
public import PosminiProtocol
public import Logging
public import PosminiDecrypt
import ReaderIO
import Synchronization

/// Why a card could not be encrypted (the arm ends with this code).
/// Turns the read tracks of a swipe into the `encrypted` object of a CARD: the device key, its
/// persisted counter, and the test-key warning.
public final class CardEncryptor: Sendable {
    let device: DeviceKey
    let counter: CounterStore
    let testKey: Bool
    let logger: Logger
    /// Called with each counter right after it is reserved, before anything is published: the
    /// daemon's `--test-crash-after-reserve` seam ends the process there (KeySetup builds it).
    let afterReserve: (@Sendable (UInt32) -> Void)?

    public init(device: consuming DeviceKey, counter: CounterStore, testKey: Bool, logger: Logger,
                afterReserve: (@Sendable (UInt32) -> Void)? = nil) {
        self.device = device
        self.counter = counter
        self.testKey = testKey
        self.logger = logger
        self.afterReserve = afterReserve
    }

    /// `posminictl simulate exhaust-key` (test key only): the key behaves as used up until the
    /// daemon restarts; the counter file is not touched.
    private let exhaustedForTest = Atomic<Bool>(false)

    func exhaustForTest() { exhaustedForTest.store(true, ordering: .relaxed) }

    public var isExhausted: Bool { exhaustedForTest.load(ordering: .relaxed) || counter.peek == nil }

    /// The `encrypted` object for a swipe's read tracks (one per track number, the first read).
    public func encrypt(_ swipe: Swipe) -> Result<JSONValue, CardEncryptionError> {
        var tracks: [(number: Int, text: SecretText)] = []
        for t in swipe.readTracks {
            guard let format = t.format, let text = t.text, !tracks.contains(where: { $0.number == format.rawValue }) else { continue }
            tracks.append((format.rawValue, text))
        }
        let value: UInt32
        do {
            if exhaustedForTest.load(ordering: .relaxed) { throw KeyStoreError("key_exhausted") }
            value = try counter.reserve()
        } catch {
            if isExhausted {
                logger.error("the DUKPT key \(Hex.encode(device.keyID)) is exhausted: no card can be sent until a new key is provisioned")
                return .failure(CardEncryptionError(code: "key_exhausted", message: "the reader's encryption key is used up: provision a new key"))
            }
            logger.error("\(error)")
            return .failure(CardEncryptionError(code: "encryption_failed", message: "the transaction counter could not be saved"))
        }
        afterReserve?(value)
        do {
            let cryptogram = try device.encrypt(tracks: tracks, counter: value)
            if testKey { logger.warning("\(TestKeys.warning): card encrypted under the published test key (KSN \(Hex.encode(cryptogram.ksn)))") }
            return .success(CryptogramJSON.json(cryptogram))
        } catch {
            logger.error("encryption failed: \(error)")
            return .failure(CardEncryptionError(code: "encryption_failed", message: "the card could not be encrypted"))
        }
    }

    /// Transactions the key has left (for the metrics; 0 when exhausted).
    public var transactionsLeft: Int {
        isExhausted ? 0 : device.scheme.transactionsLeft(next: counter.peek)
    }

    /// For STATUS: scheme, key ID, the next counter, whether exhausted, whether the test key.
    public func status() -> StatusReport.EncryptionStatus {
        StatusReport.EncryptionStatus(scheme: device.scheme.rawValue, keyID: Hex.encode(device.keyID), exhausted: isExhausted,
                                      testKey: testKey, nextCounter: counter.peek.map { Int($0) })
    }
}
