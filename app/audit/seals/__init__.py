"""Seals of the audit chain: signed checkpoints of the chain head kept outside the database, the
key that signs them, the sealer that makes one at a fixed cadence, and the export an auditor
verifies with the public key alone.

    checkpoint.py       the signed checkpoint, its byte form, the check of a run of them
    seal_key.py         the Ed25519 signing key and the published public keys
    sealer.py           the background task that seals the chain head (one instance at a time)
    checkpoint_dir.py   the append-only directory of checkpoint files outside the database
    export_file.py      the export (records with their hashes, and the checkpoints), offline verify
    whole_file.py       a file created whole and exclusively, never replaced
"""
