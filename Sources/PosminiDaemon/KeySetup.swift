import PosminiConfig
import DUKPT
import Secrets
import Logging
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Start-up: the state directory, the key (test key, systemd credential or key file) and its
/// counter. Every refusal says what is wrong and how to fix it.
enum KeySetup {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let s = String(cString: value)
        return s.isEmpty ? nil : s
    }

    static func stateDirectory(configured: String) throws(KeyStoreError) -> String {
        try FileRules.resolvedStateDirectory(configured: configured)
    }

    static func encryptor(options: DaemonOptions, configuration: inout DaemonConfiguration, logger: Logger) throws -> CardEncryptor {
        configuration.stateDirectory = try stateDirectory(configured: configuration.stateDirectory)
        // The test seam, built once here: a process that dies between reserving a counter and
        // publishing the card (the counter must never be used twice, whatever the restart).
        var crash: (@Sendable (UInt32) -> Void)?
        if options.crashAfterReserve {
            crash = { [logger] (value: UInt32) in
                logger.critical("test seam: exiting after reserving counter \(value), before publishing")
                _exit(70)
            }
        }
        if options.testKey {
            let scheme = configuration.scheme ?? .aes128
            let device = try TestKeys.deviceKey(scheme)
            let counter = try CounterStore(directory: configuration.stateDirectory, scheme: scheme, keyID: device.keyID, create: true)
            logger.warning("\(TestKeys.warning): --test-key encrypts card events under the published \(scheme.rawValue) test BDK; anyone can decrypt them")
            return CardEncryptor(device: device, counter: counter, testKey: true, logger: logger, afterReserve: crash)
        }
        let path = KeyFile.locate(configured: options.keyFile ?? configuration.keyFile ?? KeyFile.defaultPath,
                                  credentialsDirectory: environment("CREDENTIALS_DIRECTORY"))
        let device = try KeyFile.load(path)
        if let wanted = configuration.scheme, wanted != device.scheme {
            throw KeyStoreError("the configuration asks for scheme = \(wanted.rawValue) but the key in \(path) is \(device.scheme.rawValue): provision a key of that scheme or change the configuration")
        }
        configuration.scheme = device.scheme
        let counter = try CounterStore(directory: configuration.stateDirectory, scheme: device.scheme, keyID: device.keyID, create: false)
        logger.info("card events encrypted with \(device.scheme.rawValue), key \(Hex.encode(device.keyID)) from \(path)")
        if counter.peek == nil {
            logger.error("the key \(Hex.encode(device.keyID)) is exhausted: arms are refused with key_exhausted until a new key is provisioned")
        }
        return CardEncryptor(device: device, counter: counter, testKey: false, logger: logger, afterReserve: crash)
    }
}
