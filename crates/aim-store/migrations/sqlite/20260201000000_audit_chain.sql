-- The verifiable audit log: one hash chain + RFC 9162 Merkle tree per organization.
-- System events (no organization) form their own chain under the nil UUID, so every row has a
-- chain id and (org_id, seq) is unique and gapless per chain (docs/server-audit.md).
UPDATE audit_entries SET org_id = X'00000000000000000000000000000000' WHERE org_id IS NULL;
CREATE UNIQUE INDEX audit_entries_chain ON audit_entries (org_id, seq);

-- Per-chain head, locked (written first) by every append: size, hash of the last entry (32 zero
-- bytes when empty), and the Merkle frontier (concatenated 32-byte roots of the perfect subtrees
-- of the binary decomposition of size, largest first).
CREATE TABLE audit_heads (
    org_id     BLOB PRIMARY KEY,
    size       INTEGER NOT NULL,
    head_hash  BLOB NOT NULL,
    frontier   BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    -- size and time of the newest signed checkpoint (0 = none yet)
    checkpoint_size INTEGER NOT NULL DEFAULT 0,
    checkpoint_at   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Hash of every perfect Merkle subtree, written when it closes: (level b, idx i) covers leaves
-- [i*2^b, (i+1)*2^b); level 0 holds the leaf hashes. Roots and proofs read O(log n) of these.
CREATE TABLE audit_nodes (
    org_id BLOB NOT NULL,
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hash   BLOB NOT NULL,
    PRIMARY KEY (org_id, level, idx)
) STRICT, WITHOUT ROWID;

-- Per-organization Ed25519 log key; the private half sealed by the server key ring
-- (AAD "org_key:<org id>:<key id>").
CREATE TABLE org_keys (
    org_id         BLOB PRIMARY KEY,
    key_id         TEXT NOT NULL,
    public_key     BLOB NOT NULL,
    private_sealed BLOB NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- Signed checkpoints (the JSON document exactly as served).
CREATE TABLE audit_checkpoints (
    org_id     BLOB NOT NULL,
    tree_size  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (org_id, tree_size)
) STRICT;
