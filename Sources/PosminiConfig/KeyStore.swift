import Synchronization
public import DUKPT
public import Secrets
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// Why the daemon has no usable key or counter: each names the file and the fix.
public struct KeyStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The published test keys (ANSI X9.24 test vectors): for demonstrations and tests only.
public enum TestKeys {
    public static let aesBDK = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
    public static let aesIKID = "1234567890123456"
    public static let tdesBDK = "0123456789ABCDEFFEDCBA9876543210"
    public static let tdesKSN = "FFFF9876543210E00000"
    public static let warning = "TEST KEY: not for real cards"

    public static func deviceKey(_ scheme: DUKPTScheme) throws -> DeviceKey {
        switch scheme {
        case .aes128:
            try DeviceKey.derive(scheme: .aes128, bdk: Hex.decodeSecret(aesBDK, lengths: [16]), keyID: Hex.decode(aesIKID))
        case .tdes:
            try DeviceKey.derive(scheme: .tdes, bdk: Hex.decodeSecret(tdesBDK, lengths: [16]), keyID: Hex.decode(tdesKSN))
        }
    }

    public static func bdk(_ scheme: DUKPTScheme) throws -> SecretBytes {
        try Hex.decodeSecret(scheme == .aes128 ? aesBDK : tdesBDK, lengths: [16])
    }
}

/// Initial-key files: `scheme`, the key identifier (`ikid`, or `ksn` for TDES) and the key
/// (`ik`, or `ipek`), as `name = hex` lines. Readable by its owner only.
public enum KeyFile {
    public static var credentialName: String { KeyFileLocation.credentialName }
    public static var defaultPath: String { KeyFileLocation.defaultPath }

    /// Where the key is: the systemd credential if there is one, else `path`.
    public static func locate(configured path: String, credentialsDirectory: String?) -> String {
        KeyFileLocation.locate(configured: path, credentialsDirectory: credentialsDirectory)
    }

    /// The key file's text for a device key.
    public static func text(_ key: borrowing DeviceKey) -> SecretBytes {
        let (idName, keyName) = names(key.scheme)
        let head = """
            # posminid initial key. Keep it readable by its owner only (chmod 600); in production
            # hand it to the service with LoadCredentialEncrypted=posminid.ik:…
            scheme = \(key.scheme.rawValue)
            \(idName) = \(Hex.encode(key.keyID))
            \(keyName) = 
            """
        let tail = SecretBytes(copying: Array("\n".utf8))
        return SecretBytes(copying: Array(head.utf8)).appending(key.key.hexDigits()).appending(tail)
    }

    static func names(_ scheme: DUKPTScheme) -> (id: String, key: String) {
        scheme == .aes128 ? ("ikid", "ik") : ("ksn", "ipek")
    }

    /// Reads and checks a key file: what it is, its owner, mode, syntax, lengths. It is opened
    /// once, not following a symbolic link and not waiting on a FIFO, and the checks are fstat
    /// on that descriptor. The file's bytes are read into a wiped buffer.
    public static func load(_ path: String) throws(KeyStoreError) -> DeviceKey {
        let file: OpenedFile
        do {
            file = try OpenedFile(reading: path)
        } catch where error.errno == ENOENT {
            throw KeyStoreError("""
                no DUKPT key: \(path) does not exist. Provide the reader's initial key as the systemd \
                credential \(credentialName) (LoadCredentialEncrypted=\(credentialName):/path), or in \
                \(defaultPath) (mode 600); labs write one with `posminid provision --bdk HEX --ikid HEX`; \
                demonstrations use --test-key
                """)
        } catch where error.errno == ELOOP {
            throw KeyStoreError("key file \(path) is a symbolic link: refusing it; name the key file itself (owned by posminid's user, mode 600)")
        } catch {
            throw KeyStoreError("key file \(error)")
        }
        let status = file.status
        guard status.kind == .regular else {
            throw KeyStoreError("key file \(path) is a \(status.kind.rawValue), not a regular file: refusing it")
        }
        guard FileRules.daemonOwners.contains(status.owner) else {
            throw KeyStoreError("""
                key file \(path) is owned by \(FileBytes.describeUser(status.owner)), not by posminid's user \
                (\(FileBytes.describeUser(FileBytes.effectiveUserID))) or root: refusing it; \
                run chown \(FileBytes.userName(FileBytes.effectiveUserID) ?? String(FileBytes.effectiveUserID)) \(path)
                """)
        }
        if status.mode & 0o077 != 0 {
            throw KeyStoreError("key file \(path) is readable or writable by group or others (mode \(String(status.mode, radix: 8))): refusing it; run chmod 600 \(path)")
        }
        let contents = try readSecret(file)
        return try parse(contents, path: path)
    }

    static func readSecret(_ file: borrowing OpenedFile) throws(KeyStoreError) -> SecretBytes {
        var buffer = SecretBytes(count: 4096)
        let used: Int
        do {
            used = try buffer.withUnsafeMutableBytes { (b) throws(FileError) in try file.read(into: UnsafeMutableRawBufferPointer(b)) }
        } catch {
            throw KeyStoreError("key file \(error)")
        }
        guard used < buffer.count else { throw KeyStoreError("key file \(file.path) is larger than 4 KiB: not a key file") }
        return buffer.slice(0..<used)
    }

    /// Lines in the file, the last one counted even when empty (where a missing line is reported).
    static func lineCount(_ contents: borrowing SecretBytes) -> Int {
        var n = 1
        for k in 0..<contents.count where contents[k] == 0x0A { n += 1 }
        return n
    }

    /// Parses `name = value` lines. The key's hex goes straight into a wiped buffer.
    public static func parse(_ contents: borrowing SecretBytes, path: String) throws(KeyStoreError) -> DeviceKey {
        var scheme: DUKPTScheme?
        var keyID: [UInt8]?
        var keyRange: Range<Int>?
        var keyLine = 0
        func fail(_ line: Int, _ message: String) -> KeyStoreError {
            KeyStoreError("key file \(path):\(line): \(message); write a new one with `posminid provision`")
        }
        // Ranges only: the key's digits are read where they are, in the wiped buffer.
        let entries: [KeyValueText.Entry]
        do {
            entries = try KeyValueText.entries(count: contents.count, byte: { contents[$0] }, comments: .wholeLine)
        } catch {
            throw fail(error.line, "expected 'name = value'")
        }
        for entry in entries {
            // Names and public values are safe to hold as strings; the key is not.
            let name = String(decoding: entry.name.map { contents[$0] }, as: UTF8.self)
            switch name {
            case "ik", "ipek":
                keyRange = entry.value
                keyLine = entry.line
            case "scheme", "ikid", "ksn":
                let value = String(decoding: entry.value.map { contents[$0] }, as: UTF8.self)
                if name == "scheme" {
                    guard let s = DUKPTScheme(rawValue: value) else {
                        throw fail(entry.line, "unknown scheme '\(value)' (aes128-dukpt or tdes-dukpt)")
                    }
                    scheme = s
                } else {
                    do { keyID = try Hex.decode(value) } catch { throw fail(entry.line, "\(name) \(error)") }
                }
            default:
                throw fail(entry.line, "unknown name '\(name)'")
            }
        }
        // A missing line is reported at the file's end.
        let lineNumber = Self.lineCount(contents)
        guard let scheme else { throw fail(lineNumber, "no 'scheme' line") }
        let (idName, keyName) = names(scheme)
        guard let keyID else { throw fail(lineNumber, "no '\(idName)' line") }
        guard let keyRange else { throw fail(lineNumber, "no '\(keyName)' line") }
        guard keyRange.count == 32 else {
            throw fail(keyLine, "\(keyName) has \(keyRange.count) hex digits; it has 32")
        }
        let parsed: SecretBytes?
        do {
            parsed = try contents.withUnsafeBytes { (all) throws(HexError) in try Hex.decodeSecret(digits: all[keyRange], lengths: [16]) }
        } catch {
            parsed = nil
        }
        guard let key = parsed else { throw fail(keyLine, "\(keyName) is not hex") }
        do {
            return try DeviceKey(scheme: scheme, key: key, keyID: keyID)
        } catch {
            throw fail(lineNumber, "\(error)")
        }
    }

    /// Writes a key file (mode 600), refusing to replace one: it appears whole, or not at all,
    /// and only where no file (or link) of that name exists.
    public static func write(_ key: borrowing DeviceKey, to path: String) throws(KeyStoreError) {
        let text = text(key)
        do {
            let (directory, name) = try Directory.opening(containing: path)
            try text.withUnsafeBytes { (b) throws(FileError) in
                try directory.write(to: name, mode: 0o600, replacing: false, UnsafeRawBufferPointer(b))
            }
        } catch where error.errno == EEXIST {
            throw KeyStoreError("\(path) exists: refusing to replace a key (remove it first if it is really unused)")
        } catch {
            throw KeyStoreError("cannot write the key: \(error)")
        }
    }
}

/// The transaction counter of one key, in the state directory: `counter-<key ID>` holding the
/// key ID, the next counter value and a CRC-32 over both. Every value is reserved on disk
/// (temporary file, fsync, rename, directory fsync) before a cryptogram using it leaves.
public final class CounterStore: Sendable {
    public let path: String
    public let scheme: DUKPTScheme
    public let keyID: [UInt8]
    /// The next value to use; nil when the key is exhausted.
    private let next: Mutex<UInt32?>

    public static func path(directory: String, keyID: [UInt8]) -> String {
        directory + "/counter-" + Hex.encode(keyID)
    }

    /// Opens the key's counter. `create`: start a missing counter at the first value (the test
    /// key; `provision`); otherwise a missing counter is refused.
    public init(directory: String, scheme: DUKPTScheme, keyID: [UInt8], create: Bool) throws(KeyStoreError) {
        path = CounterStore.path(directory: directory, keyID: keyID)
        self.scheme = scheme
        self.keyID = keyID
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: 4096, followingLinks: false)
        } catch where error.errno == ENOENT {
            guard create else {
                throw KeyStoreError("""
                    the counter of key \(Hex.encode(keyID)) is missing (\(path)): this key may have been \
                    used before, and starting its counter again would repeat transaction keys. Refusing to \
                    start; provision a new key (with a new IKID)
                    """)
            }
            guard let first = scheme.counter(after: 0) else { throw KeyStoreError("no counter value") }
            next = Mutex(first)
            try save(first)
            return
        } catch {
            throw KeyStoreError("counter file \(error)")
        }
        next = Mutex(try CounterStore.parse(bytes, path: path, keyID: keyID, scheme: scheme))
    }

    public static func render(keyID: [UInt8], next: UInt32?) -> String {
        let value = next.map { Hex.encode([UInt8($0 >> 24), UInt8($0 >> 16 & 0xFF), UInt8($0 >> 8 & 0xFF), UInt8($0 & 0xFF)]) } ?? "exhausted"
        let body = "key_id = \(Hex.encode(keyID))\nnext = \(value)\n"
        return "# posminid DUKPT transaction counter: never edit it, copy it or restore it from a backup.\n"
            + body + "check = \(Hex.encode(crc32(Array(body.utf8))))\n"
    }

    static func parse(_ bytes: [UInt8], path: String, keyID: [UInt8], scheme: DUKPTScheme) throws(KeyStoreError) -> UInt32? {
        func corrupt(_ why: String) -> KeyStoreError {
            KeyStoreError("counter file \(path) is corrupt (\(why)): refusing to start rather than risk reusing a transaction key; provision a new key")
        }
        var fields: [String: String] = [:]
        do {
            for entry in try KeyValueText.entries(bytes, comments: .wholeLine) {
                fields[KeyValueText.string(bytes, entry.name)] = KeyValueText.string(bytes, entry.value)
            }
        } catch {
            throw corrupt("a line without '='")
        }
        guard let id = fields["key_id"], let value = fields["next"], let check = fields["check"] else {
            throw corrupt("key_id, next or check missing")
        }
        let body = "key_id = \(id)\nnext = \(value)\n"
        guard check == Hex.encode(crc32(Array(body.utf8))) else { throw corrupt("check value does not match") }
        guard id == Hex.encode(keyID) else {
            throw KeyStoreError("counter file \(path) belongs to key \(id), not \(Hex.encode(keyID)): refusing to start; provision a new key")
        }
        if value == "exhausted" { return nil }
        guard let raw = try? Hex.decode(value), raw.count == 4 else { throw corrupt("next is not 8 hex digits") }
        let n = raw.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard scheme.isValidCounter(n) else { throw corrupt("next \(value) is not a counter value of \(scheme.rawValue)") }
        return n
    }

    private func save(_ value: UInt32?) throws(KeyStoreError) {
        do {
            try FileBytes.write(Array(CounterStore.render(keyID: keyID, next: value).utf8), to: path, mode: 0o600, durable: true)
        } catch {
            throw KeyStoreError("cannot save the transaction counter: \(error)")
        }
    }

    /// The next value (nil: exhausted).
    public var peek: UInt32? { next.withLock { $0 } }

    /// Reserves a counter value: the one after it is on disk before this returns it.
    public func reserve() throws(KeyStoreError) -> UInt32 {
        let result: Result<UInt32, KeyStoreError> = next.withLock { next in
            guard let n = next else { return .failure(KeyStoreError("key_exhausted")) }
            let after = scheme.counter(after: n)
            do throws(KeyStoreError) { try save(after) } catch { return .failure(error) }
            next = after
            return .success(n)
        }
        return try result.get()
    }

    /// CRC-32 (IEEE 802.3), for the counter file's check line.
    static func crc32(_ bytes: [UInt8]) -> [UInt8] {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc = ~crc
        return [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }
}
