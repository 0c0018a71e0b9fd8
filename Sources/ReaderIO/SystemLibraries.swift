import CALSA
import CUdev

/// Versions of the C libraries the hardware edges link against, for `--version` and diagnose.
public enum SystemLibraries {
    /// alsa-lib's runtime version, e.g. `1.2.8`.
    public static var alsaVersion: String {
        guard let version = snd_asoundlib_version() else { return "unknown" }
        return String(cString: version)
    }

    /// Whether libudev can create a context here (it can without a running udevd: it reads sysfs).
    public static var udevAvailable: Bool {
        guard let udev = udev_new() else { return false }
        udev_unref(udev)
        return true
    }
}
