import CPosix

/// What every command that holds audio, keys or clear tracks does first: the process is made
/// not dumpable (prctl PR_SET_DUMPABLE 0), so that a crash leaves no core file holding a card
/// or a key, and other unprivileged processes cannot ptrace it or read its /proc/PID/mem.
public enum ProcessProtection {
    /// Makes the process not dumpable; false when the kernel refused (errno is set).
    @discardableResult
    public static func forbidDumps() -> Bool { posmini_set_undumpable() == 0 }

    /// Whether the process is dumpable now (nil when the kernel does not say).
    public static var isDumpable: Bool? {
        switch posmini_dumpable() {
        case 0: false
        case -1: nil
        default: true
        }
    }
}
