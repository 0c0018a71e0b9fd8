public import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// Who may own the directories and files posminid trusts, and the messages when they are not
/// so. The checks are fstat on descriptors opened without following a symbolic link.
public enum FileRules {
    /// The daemon's own user and root: nobody else may own its state or its key.
    public static var daemonOwners: Set<UInt32> { [FileBytes.effectiveUserID, 0] }

    /// The state directory (created with mode 700 when missing): refused unless owned by the
    /// daemon's user or root and writable by nobody else, since whoever can write it can plant
    /// links in place of the counter and the bindings.
    public static func stateDirectory(_ path: String) throws(KeyStoreError) -> Directory {
        do {
            return try Directory.openOrCreatePrivate(path, owners: daemonOwners)
        } catch {
            switch error {
            case .cannotOpen(let failure):
                throw KeyStoreError("state directory \(failure)")
            case .notPrivate(let status):
                throw KeyStoreError("""
                    state directory \(path) is owned by \(FileBytes.describeUser(status.owner)) with mode \(status.modeText): \
                    refusing it, since \(status.writableByOthers ? "others can write to it" : "another user owns it") and could \
                    replace the transaction counter or the bindings; it must belong to the user posminid runs as \
                    (\(FileBytes.describeUser(FileBytes.effectiveUserID))) or root and be writable by its owner only \
                    (chown \(FileBytes.userName(FileBytes.effectiveUserID) ?? String(FileBytes.effectiveUserID)) \(path); chmod 700 \(path))
                    """)
            }
        }
    }

    /// `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first when it lists several), else
    /// the command line's or configuration's, created with mode 700 when missing; refused
    /// unless it is the daemon's (or root's) and writable by its owner only.
    public static func resolvedStateDirectory(configured: String) throws(KeyStoreError) -> String {
        let fromSystemd = getenv("STATE_DIRECTORY").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let directory = fromSystemd.map { String($0.split(separator: ":").first ?? Substring($0)) } ?? configured
        _ = try stateDirectory(directory)
        return directory
    }

    /// Gives the socket at `path` to group `gid` through its directory's descriptor, not
    /// following a symbolic link put in the socket's place.
    public static func setSocketGroup(_ path: String, to gid: UInt32) throws(FileError) {
        let (directory, name) = try Directory.opening(containing: path, namesOnly: true)
        try directory.setGroup(of: name, to: gid)
    }
}
