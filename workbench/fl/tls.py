"""Throw-away credentials for a loopback federation: a CA, the SuperLink's certificate, a key pair per site.

Flower 1.41 authenticates SuperNodes only over TLS (`--enable-supernode-auth`
refuses `--insecure`), and only by NIST EC keys registered with the SuperLink
beforehand. `issue` makes all of it for one run, as 0600 files in a 0700 folder
(`workbench.scratch`) inside the run's private folder, which nothing outlives.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workbench.scratch import write_private

VALIDITY = datetime.timedelta(days=30)  # a long federated run must not outlive its certificate


@dataclass(frozen=True)
class SiteKey:
    """A site's SuperNode key pair: the private key for its SuperNode, the public one for registration."""

    party: str
    private_key: Path
    public_key: Path
    fingerprint: str
    public_pem: bytes  # how Flower carries and logs the key (SubjectPublicKeyInfo PEM)
    superexec_secret: Path  # signs its ClientApp worker's task requests to its SuperNode


@dataclass(frozen=True)
class Credentials:
    folder: Path
    ca: Path
    certificate: Path
    key: Path
    superexec_secret: Path  # signs the SuperExec's task requests to the SuperLink
    allowed_keys: Path  # the sites' public keys, one a line: the only ones the SuperLink registers
    sites: dict[str, SiteKey]


def fingerprint(public_key: ec.EllipticCurvePublicKey | bytes) -> str:
    """OpenSSH's SHA256 fingerprint (as `ssh-keygen -lf KEY.pub` prints it), of a key or of its PEM bytes."""
    key = serialization.load_pem_public_key(public_key) if isinstance(public_key, bytes) else public_key
    blob = base64.b64decode(key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PPML Workbench run"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey, private_format: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption())


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA that signs exactly one certificate, the SuperLink's for 127.0.0.1 and localhost; its key is never written."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("workbench run CA"))
        .issuer_name(_name("workbench run CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA384())
    )
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return (
        write_private(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        write_private(folder / "superlink.pem", server.public_bytes(serialization.Encoding.PEM)),
        write_private(folder / "superlink.key", _pem_key(server_key, serialization.PrivateFormat.TraditionalOpenSSL)),
    )


def site_key(folder: Path, party: str) -> SiteKey:
    """An EC P-384 key pair in OpenSSH format: what `flower-supernode` and `flwr supernode register` read."""
    key = ec.generate_private_key(ec.SECP384R1())
    public = key.public_key()
    return SiteKey(
        party=party,
        private_key=write_private(folder / f"{party}.key", _pem_key(key, serialization.PrivateFormat.OpenSSH)),
        public_key=write_private(folder / f"{party}.pub", public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)),
        fingerprint=fingerprint(public),
        public_pem=public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        superexec_secret=write_private(folder / f"{party}.superexec-secret", secrets.token_bytes(32)),
    )


def issue(folder: Path, parties: list[str]) -> Credentials:
    """Everything a loopback federation of `parties` needs to run with TLS and SuperNode authentication."""
    ca, certificate, key = _certificates(folder)
    sites = {party: site_key(folder, party) for party in parties}
    allowed = write_private(folder / "allowed-keys.pub", b"".join(site.public_key.read_bytes().strip() + b"\n" for site in sites.values()))
    return Credentials(folder, ca, certificate, key, write_private(folder / "superexec-secret", secrets.token_bytes(32)), allowed, sites)
