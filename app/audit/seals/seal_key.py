"""The key that signs checkpoints, and the public keys verify trusts.

The signing key is an Ed25519 private key in PEM (PKCS#8) in a file the database never sees
(``SSOGW_AUDIT_SEAL_KEY_FILE``; a mounted secret in production). Its public half is published
beside it as ``KEY.pub`` and by ``ssogw audit seal-key``. A key's id is ``ed25519:`` and the
first 16 bytes, in hex, of the SHA-256 of the raw public key; each checkpoint names the id of
the key that signed it, so verify can trust several keys (the current one and those it
replaced).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.audit.seals.checkpoint import Checkpoint, signed_bytes
from app.audit.seals.whole_file import create_whole
from app.errors import InvalidInput

log = logging.getLogger(__name__)


def key_id(public: Ed25519PublicKey) -> str:
    """The id a public key's checkpoints name."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).digest()[:16].hex()


def public_pem(public: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo): the form to publish."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_file(key_file: Path) -> Path:
    """Where the public half of ``key_file`` is published beside it (``KEY.pub``)."""
    return key_file.with_name(key_file.name + ".pub")


class SealKey:
    """The Ed25519 key that signs checkpoints."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(
        self, *, number: int, seq: int, head_hash: bytes, sealed_at: datetime, prev_digest: bytes
    ) -> Checkpoint:
        """A checkpoint of the head ``(seq, head_hash)``, signed."""
        message = signed_bytes(number, seq, head_hash, sealed_at, prev_digest, self.key_id)
        return Checkpoint(
            number=number,
            seq=seq,
            head_hash=head_hash,
            sealed_at=sealed_at,
            prev_digest=prev_digest,
            key_id=self.key_id,
            signature=self._private.sign(message),
        )

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_key_file(path: Path) -> SealKey:
    """Write a new signing key to ``path`` (mode 0600) and its public half to ``path.pub``
    (0644); FileExistsError if ``path`` exists (a key is never overwritten)."""
    key = SealKey(Ed25519PrivateKey.generate())
    if not create_whole(path, key.private_pem(), mode=0o600):
        raise FileExistsError(f"{path} exists: a seal key is never overwritten")
    create_whole(public_key_file(path), public_pem(key.public).encode(), mode=0o644)
    return key


def signing_key(path: Path, *, generate: bool) -> SealKey:
    """The signing key in ``path``; with ``generate``, made there first if it is missing."""
    if generate and not path.exists():
        try:
            return new_key_file(path)
        except FileExistsError:  # another instance made it a moment ago: use that one
            pass
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key.", field="seal_key")
    if path.stat().st_mode & 0o007:
        log.warning("the seal key %s can be read by any user (chmod 600)", path)
    return SealKey(private)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in ``path`` (a public key in PEM, or the private key itself)."""
    data = path.read_bytes()
    found: object = None
    try:
        found = serialization.load_pem_public_key(data)
    except ValueError:
        with contextlib.suppress(ValueError, TypeError):
            found = serialization.load_pem_private_key(data, password=None).public_key()
    if not isinstance(found, Ed25519PublicKey):
        raise InvalidInput(f"{path} holds no Ed25519 key in PEM form.", field="public_key")
    return found


def trusted_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The public keys in ``paths``, by key id."""
    return {key_id(key): key for key in (load_public_key(path) for path in paths)}


def configured_keys(key_file: Path, earlier: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The keys verify trusts by default: the signing key's public half (``KEY.pub``, else the
    key itself; none if neither exists here) and the ``earlier`` keys' published halves."""
    own = [p for p in (public_key_file(key_file), key_file) if p.exists()][:1]
    return trusted_keys([*own, *earlier])
