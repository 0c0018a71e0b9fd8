"""A PEP 517 build backend for the posmini package, from the standard library alone.

It builds the one pure-Python wheel this package is (posmini/*.py and its metadata), so that
`pip install ./clients/python` works offline, without setuptools.
"""
import base64
import hashlib
import os
import zipfile

NAME = "posmini"
VERSION = "0.6.0"
TAG = "py3-none-any"
HERE = os.path.dirname(os.path.abspath(__file__))


def _metadata():
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {VERSION}\n"
        "Summary: Client for posminid, the audio-jack magnetic-stripe reader daemon\n"
        "Requires-Python: >=3.9\n"
    )


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = f"{NAME}-{VERSION}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = f"{NAME}-{VERSION}-{TAG}.whl"
    info = f"{NAME}-{VERSION}.dist-info"
    files = []
    package = os.path.join(HERE, NAME)
    for entry in sorted(os.listdir(package)):
        if entry.endswith(".py"):
            with open(os.path.join(package, entry), "rb") as f:
                files.append((f"{NAME}/{entry}", f.read()))
    files.append((f"{info}/METADATA", _metadata().encode()))
    files.append((f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: posmini_build\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode()))
    record = [_record_line(path, data) for path, data in files] + [f"{info}/RECORD,,"]
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files:
            wheel.writestr(path, data)
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    import tarfile

    name = f"{NAME}-{VERSION}"
    path = os.path.join(sdist_directory, name + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for entry in ["pyproject.toml", "posmini_build.py", "README.md", NAME]:
            full = os.path.join(HERE, entry)
            if os.path.exists(full):
                tar.add(full, arcname=f"{name}/{entry}", filter=lambda t: None if "__pycache__" in t.name else t)
        info = tarfile.TarInfo(f"{name}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        import io

        tar.addfile(info, io.BytesIO(data))
    return name + ".tar.gz"
