import PosminiConfig
public import PosminiDecrypt
import DUKPT
import Secrets
import PosminiSystem

/// `posminid provision`: derives a device key from a BDK, writes the key file and starts the
/// key's counter.
public enum ProvisionTool {
    public static func run(bdk: BDKSource, ikid: String?, ksn: String?, out: String, stateDirectory: String?,
                           err: (String) -> Void) -> Int32 {
        if case .hex = bdk { err(BDKSource.commandLineWarning("posminid provision")) }
        let scheme: DUKPTScheme = ikid != nil ? .aes128 : .tdes
        let idText = ikid ?? ksn ?? ""
        do {
            let bdkBytes: SecretBytes
            do { bdkBytes = try bdk.read() } catch { throw KeyStoreError("\(error)") }
            let id: [UInt8]
            do { id = try Hex.decode(idText) } catch { throw KeyStoreError("--\(ikid != nil ? "ikid" : "ksn") \(error)") }
            let device: DeviceKey
            do { device = try DeviceKey.derive(scheme: scheme, bdk: bdkBytes, keyID: id) } catch {
                throw KeyStoreError("\(error)")
            }
            let directory = try FileRules.resolvedStateDirectory(configured: stateDirectory ?? DaemonConfiguration().stateDirectory)
            let counterPath = CounterStore.path(directory: directory, keyID: device.keyID)
            if ((try? FileBytes.permissions(counterPath)) ?? nil) != nil {
                throw KeyStoreError("key \(Hex.encode(device.keyID)) already has a counter (\(counterPath)): a key ID is provisioned once; choose a new one")
            }
            try KeyFile.write(device, to: out)
            _ = try CounterStore(directory: directory, scheme: scheme, keyID: device.keyID, create: true)
            err("posminid provision: wrote the \(scheme.rawValue) initial key \(Hex.encode(device.keyID)) to \(out) (mode 600) and its counter to \(counterPath)")
            return 0
        } catch {
            err("posminid provision: \(error)")
            return 2
        }
    }
}
