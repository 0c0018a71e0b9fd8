import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The Debian package and `make install` must install the same files: a file added to one and
/// forgotten in the other is found here, without building (the package itself is checked by
/// `make test-package`). The versions are checked by `DaemonTests.versionsAgree`.
enum PackageLayout {
    /// Where debhelper (13, Debian 12) puts units and udev rules: `/lib`, not `/usr/lib`.
    static func normalised(_ path: String) -> String {
        for prefix in ["/usr/lib/systemd/system/", "/usr/lib/udev/"] where path.hasPrefix(prefix) {
            return String(path.dropFirst(4))
        }
        return path
    }

    /// The destinations of every `install -D -m MODE SOURCE DEST` in `make -n install`'s output.
    static func makeInstallPaths(_ output: String) -> Set<String> {
        var paths = Set<String>()
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            for k in words.indices where words[k] == "install" && k + 5 < words.count && words[k + 1] == "-D" && words[k + 2] == "-m" {
                paths.insert(normalised(words[k + 5]))
            }
        }
        return paths
    }

    /// What the package installs, read from debian/: posminid.install (source, folder), the
    /// `install -D` lines of debian/rules, the man pages, the udev rule (dh_installudev's name and
    /// priority) and the sysusers file. `files` gives a debian/ file's text (nil: absent).
    static func packagePaths(_ files: (String) -> String?) -> (paths: Set<String>, sources: [String]) {
        var paths = Set<String>(), sources: [String] = []
        for line in (files("posminid.install") ?? "").split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 2 else { continue }
            let name = words[0].split(separator: "/").last.map(String.init) ?? words[0]
            paths.insert("/" + (words[1].hasSuffix("/") ? words[1] : words[1] + "/") + name)
            sources.append(words[0])
        }
        let rules = files("rules") ?? ""
        for line in rules.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.first?.hasSuffix("install") == true, words.count >= 5, words[1] == "-D",
                  let destination = words.last, destination.hasPrefix("$(PKG)/") else { continue }
            paths.insert(String(destination.dropFirst("$(PKG)".count)))
        }
        for page in (files("posminid.manpages") ?? "").split(separator: "\n") {
            let name = page.split(separator: "/").last.map(String.init) ?? String(page)
            paths.insert("/usr/share/man/man\(name.split(separator: ".").last ?? "")/\(name)")
            sources.append(String(page))
        }
        if let udev = rules.split(separator: "\n").first(where: { $0.hasPrefix("\tdh_installudev ") }) {
            var name = "", priority = "60"
            for word in udev.split(separator: " ") {
                if word.hasPrefix("--name=") { name = String(word.dropFirst("--name=".count)) }
                if word.hasPrefix("--priority=") { priority = String(word.dropFirst("--priority=".count)) }
            }
            if files("posminid.\(name).udev") != nil { paths.insert("/lib/udev/rules.d/\(priority)-\(name).rules") }
        }
        if files("posminid.sysusers") != nil { paths.insert("/usr/lib/sysusers.d/posminid.conf") }
        return (paths, sources)
    }
}

@Suite("Debian package")
struct PackageTests: CommandTesting {
    func debianFile(_ name: String) -> String? {
        readFile(packageRoot + "/debian/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    func makeInstall() throws -> String {
        // A folder of its own: the suite's tests run at once.
        var template = Array("/tmp/posminid-make-n-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let directory = try #require(made.map { String(cString: $0) })
        let out = directory + "/out"
        defer { unlink(out); rmdir(directory) }
        let status = system("make -s -n -C \(shellQuoted(packageRoot)) install DESTDIR= PREFIX=/usr >\(shellQuoted(out)) 2>&1")
        #expect(status == 0, "\(readText(out))")
        return readText(out)
    }

    @Test("the package installs every file `make install` installs, and nothing else")
    func sameFiles() throws {
        let output = try makeInstall()
        let make = PackageLayout.makeInstallPaths(output)
        let package = PackageLayout.packagePaths(debianFile)
        #expect(make.count >= 20, "\(make.sorted()) from: \(output)")
        #expect(make.contains("/usr/sbin/posminid") && make.contains("/lib/systemd/system/posminid.service"))
        #expect(make.subtracting(package.paths).isEmpty, "make install has, the package has not: \(make.subtracting(package.paths).sorted())")
        #expect(package.paths.subtracting(make).isEmpty, "the package has, make install has not: \(package.paths.subtracting(make).sorted())")
        for source in package.sources {
            #expect(access(packageRoot + "/" + source, R_OK) == 0, "debian/ names \(source), which does not exist")
        }
        // The links debhelper reads (dh_installudev, dh_installsysusers) point at the files that
        // make install installs.
        #expect(debianFile("posminid.posmini.udev") == readText(packageRoot + "/udev-rules/72-posmini.rules"))
        #expect(debianFile("posminid.sysusers") == readText(packageRoot + "/systemd/posminid.sysusers"))
    }

    @Test("a file that only make install installs, or only the package, is reported")
    func driftIsFound() throws {
        let text = try makeInstall()
        let package = PackageLayout.packagePaths(debianFile)
        let more = PackageLayout.makeInstallPaths(text + "\ninstall -D -m 0644 docs/NEW.md /usr/share/doc/posminid/NEW.md\n")
        #expect(more.subtracting(package.paths) == ["/usr/share/doc/posminid/NEW.md"])
        let fewer = PackageLayout.packagePaths { name in
            name == "posminid.install" ? (debianFile(name) ?? "") + "docs/NEW.md usr/share/doc/posminid/\n" : debianFile(name)
        }
        #expect(fewer.paths.subtracting(PackageLayout.makeInstallPaths(text)) == ["/usr/share/doc/posminid/NEW.md"])
        #expect(!fewer.sources.allSatisfy { access(packageRoot + "/" + $0, R_OK) == 0 }, "docs/NEW.md does not exist")
        // Units under /usr/lib are where debhelper puts them under /lib.
        #expect(PackageLayout.normalised("/usr/lib/systemd/system/posminid.socket") == "/lib/systemd/system/posminid.socket")
        #expect(PackageLayout.normalised("/usr/lib/sysusers.d/posminid.conf") == "/usr/lib/sysusers.d/posminid.conf")
    }

    @Test("the recording the package ships for a first try decodes both tracks, masked")
    func sampleRecording() throws {
        let decoded = try run(["decode", packageRoot + "/data/sample-swipe.wav"])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout.contains("Track 1: ok  %B411111******1111^"), "\(decoded.stdout)")
        #expect(decoded.stdout.contains("Track 2 (assumed): ok  ;411111******1111="), "\(decoded.stdout)")
        #expect(!decoded.stdout.contains("4111111111111111") && !decoded.stderr.contains("4111111111111111"))
    }

    /// Runs debian/posminid.postrm with `argument` under `root` (DPKG_ROOT), as dpkg would.
    func postrm(_ argument: String, root: String) -> Run {
        let err = root + ".stderr"
        let status = system("DPKG_ROOT=\(shellQuoted(root)) sh \(shellQuoted(packageRoot + "/debian/posminid.postrm")) \(argument) 2>\(shellQuoted(err))")
        return Run(status: (status >> 8) & 0xFF, stdout: "", stderr: readText(err))
    }

    @Test("remove keeps the key and the counters; purge removes them together, says so, and removes the metrics link it made, not an operator's")
    func purgeRemovesKeyAndCountersTogether() throws {
        let root = try temporaryDirectory()
        let setUp = """
            cd \(shellQuoted(root)) && mkdir -p etc/posminid var/lib/posminid var/lib/prometheus/node-exporter run/posminid \
            && echo conf > etc/posminid/posminid.conf && echo key > etc/posminid/ik && echo 7 > var/lib/posminid/counter-123456789012345A \
            && echo bindings > var/lib/posminid/bindings && ln -s /run/posminid/metrics.prom var/lib/prometheus/node-exporter/posminid.prom
            """
        #expect(system(setUp) == 0)
        let removed = postrm("remove", root: root)
        #expect(removed.status == 0 && removed.stderr.isEmpty, "\(removed.stderr)")
        #expect(access(root + "/etc/posminid/ik", F_OK) == 0 && access(root + "/var/lib/posminid/counter-123456789012345A", F_OK) == 0)

        let purged = postrm("purge", root: root)
        #expect(purged.status == 0)
        #expect(purged.stderr.contains("purge removed the DUKPT key file \(root)/etc/posminid/ik and the transaction counters"), "\(purged.stderr)")
        #expect(access(root + "/etc/posminid/ik", F_OK) != 0, "the key is gone")
        #expect(access(root + "/var/lib/posminid", F_OK) != 0, "the counters are gone with it")
        #expect(access(root + "/etc/posminid/posminid.conf", F_OK) == 0, "the conffile is dpkg's to remove")
        var link = stat()
        #expect(lstat(root + "/var/lib/prometheus/node-exporter/posminid.prom", &link) != 0, "the metrics link is gone")
        #expect(access(root + "/var/lib/prometheus", F_OK) != 0, "and the folders made for it")
        #expect(access(root + "/run/posminid", F_OK) != 0)

        // Nothing left: a second purge says nothing. An operator's own file at the link's place stays.
        #expect(system("mkdir -p \(shellQuoted(root))/var/lib/prometheus/node-exporter && ln -s /srv/mine.prom \(shellQuoted(root))/var/lib/prometheus/node-exporter/posminid.prom") == 0)
        let again = postrm("purge", root: root)
        #expect(again.status == 0 && again.stderr.isEmpty, "\(again.stderr)")
        #expect(lstat(root + "/var/lib/prometheus/node-exporter/posminid.prom", &link) == 0, "not the package's link: kept")
        _ = system("rm -rf \(shellQuoted(root)) \(shellQuoted(root)).stderr")
    }
}
