//! RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and a compact frontier.
//!
//! Pure functions, no I/O. The tree is the one of RFC 9162 §2.1.1:
//!
//! - `MTH({}) = SHA-256("")` (the empty tree),
//! - `MTH({d0}) = leaf_hash(d0) = SHA-256(0x00 || d0)`,
//! - `MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n])) = SHA-256(0x01 || l || r)` where `k` is the
//!   largest power of two strictly smaller than `n`.
//!
//! Functions here take *leaf hashes* (already `leaf_hash`ed), not leaf data, so callers decide what
//! a leaf's bytes are (the audit log uses the 32 raw bytes of the entry hash, see
//! [`crate::audit::chain::Entry::leaf_hash`]).
//!
//! Proofs follow RFC 9162 §2.1.3 (inclusion, `PATH`) and §2.1.4 (consistency, `PROOF`/`SUBPROOF`)
//! exactly, path elements ordered from the leaf (or the old subtree) upwards, so any independent
//! RFC 9162 / RFC 6962 verifier accepts them.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A SHA-256 output: a leaf hash, an interior node hash or a root.
pub type Hash = [u8; 32];

/// `SHA-256("")`: the root of the empty tree (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The Merkle Tree Hash over `leaves` (leaf hashes). The empty tree hashes to [`EMPTY_ROOT`].
///
/// O(n) hashing, O(log n) memory.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// The largest power of two strictly smaller than `n`. Requires `n >= 2`.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn to_index(value: u64, what: &'static str) -> Result<usize> {
    usize::try_from(value)
        .map_err(|_| Error::invalid(what, format!("{value} does not fit in memory")))
}

/// The RFC 9162 §2.1.3.1 audit path `PATH(index, D[n])` for the leaf at `index` among `leaves`.
///
/// Elements are ordered from the leaf's sibling upwards to the child of the root. Errors if
/// `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>> {
    let m = to_index(index, "inclusion proof index")?;
    if m >= leaves.len() {
        return Err(Error::invalid(
            "inclusion proof index",
            format!("leaf {index} is not in a tree of size {}", leaves.len()),
        ));
    }
    let mut out = Vec::with_capacity(64);
    path(m, leaves, &mut out);
    Ok(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// Verifies an RFC 9162 §2.1.3.2 inclusion proof: that `leaf` (a leaf hash) is at `index` in the
/// tree of `tree_size` leaves whose root is `root`.
///
/// Returns `false` for `index >= tree_size`, for a path of the wrong length, and for any hash that
/// does not lead to `root`.
///
/// As in RFC 9162, `tree_size` is only meaningful together with `root` (a signed checkpoint binds
/// both): the same path can be structurally valid for several sizes, but it leads to the root of
/// at most one of them.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    path: &[Hash],
    root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let mut fnode = index;
    let mut snode = tree_size - 1;
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// The RFC 9162 §2.1.4.1 consistency proof `PROOF(old_size, D[n])` between the tree of the first
/// `old_size` leaves and the tree of all `leaves`.
///
/// For `old_size == 0` and `old_size == leaves.len()` the proof is empty (see
/// [`verify_consistency`] for how those are checked). Errors if `old_size > leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>> {
    let m = to_index(old_size, "consistency proof size")?;
    if m > leaves.len() {
        return Err(Error::invalid(
            "consistency proof size",
            format!(
                "old size {old_size} is larger than the current tree size {}",
                leaves.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(64);
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], complete, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies an RFC 9162 §2.1.4.2 consistency proof: that the tree of `new_size` leaves with root
/// `new_root` is an append-only extension of the tree of `old_size` leaves with root `old_root`.
///
/// Edge cases (RFC 9162 only defines `0 < old_size < new_size`):
/// - `old_size > new_size`: `false`.
/// - `old_size == new_size`: `true` iff the proof is empty and the roots are equal.
/// - `old_size == 0`: `true` iff the proof is empty and `old_root` is [`EMPTY_ROOT`] (the empty
///   tree is a prefix of every tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == EMPTY_ROOT;
    }
    // 0 < old_size < new_size: RFC 9162 §2.1.4.2.
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (*first, rest)
    };
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

/// A compact range over leaves `[0, size)`: the roots of the perfect subtrees that the binary
/// decomposition of `size` splits the tree into, largest (leftmost) first.
///
/// Invariant: `nodes.len() == size.count_ones()`, and `nodes[i]` is the root of a perfect subtree
/// of `2^b` leaves for the i-th highest set bit `b` of `size`.
///
/// [`push`](Frontier::push) is amortised O(1) hashes (O(log n) worst case) and
/// [`root`](Frontier::root) is O(log n), so a server can maintain the Merkle root of an
/// append-only log by persisting only `size` and `nodes` (at most 64 hashes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from a persisted `size` and [`nodes`](Frontier::nodes). Errors if the
    /// number of nodes is not the number of set bits of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self> {
        if nodes.len() != size.count_ones() as usize {
            return Err(Error::invalid(
                "Merkle frontier",
                format!(
                    "a tree of size {size} needs {} subtree roots, got {}",
                    size.count_ones(),
                    nodes.len()
                ),
            ));
        }
        Ok(Self { size, nodes })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        // Every trailing 1 bit of `size` is a perfect subtree of equal size to the one being
        // carried, so they merge (like binary addition).
        while s & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break, // unreachable by the invariant
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The Merkle Tree Hash of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        match it.next() {
            None => EMPTY_ROOT,
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A perfect subtree of the log's Merkle tree: `level` `b` and `index` `i` name the subtree over
/// leaves `[i * 2^b, (i + 1) * 2^b)` (level 0 = the leaves themselves).
///
/// A store that persists the hash of every perfect subtree as it closes (see [`closed_subtrees`])
/// can answer every question below with O(log n) subtree reads and no scan of the leaves.
pub type SubtreeId = (u8, u64);

/// The perfect subtrees that close when the leaf at `index` is appended, with their hashes, given
/// the frontier *before* the append (whose size must be `index`). Level 0 (the leaf) first.
///
/// Returns `None` when the frontier's size is not `index`.
pub fn closed_subtrees(before: &Frontier, leaf: Hash) -> Option<Vec<(SubtreeId, Hash)>> {
    let index = before.size();
    let mut out = vec![((0u8, index), leaf)];
    let mut h = leaf;
    let nodes = before.nodes();
    let mut level = 0u8;
    let mut s = index;
    while s & 1 == 1 {
        let left = nodes.get(nodes.len().checked_sub(1 + level as usize)?)?;
        h = node_hash(left, &h);
        level += 1;
        s >>= 1;
        out.push(((level, index >> level), h));
    }
    Some(out)
}

/// `MTH(D[start : start + n])` for a range whose `start` is aligned (a multiple of the smallest
/// power of two ≥ `n`), from perfect-subtree hashes. Uses at most `log2(n) + 1` subtrees.
fn range_hash(start: u64, n: u64, get: &mut dyn FnMut(SubtreeId) -> Hash) -> Hash {
    if n == 0 {
        return EMPTY_ROOT;
    }
    if n.is_power_of_two() {
        let level = n.trailing_zeros() as u8;
        return get((level, start >> level));
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    let left = range_hash(start, k, get);
    let right = range_hash(start + k, n - k, get);
    node_hash(&left, &right)
}

/// The Merkle Tree Hash of the first `size` leaves, from perfect-subtree hashes (the subtrees of
/// the binary decomposition of `size`: at most 64 reads).
pub fn root_from_subtrees(size: u64, get: &mut dyn FnMut(SubtreeId) -> Hash) -> Hash {
    range_hash(0, size, get)
}

/// The same path as [`inclusion_proof`] (`PATH(index, D[tree_size])`), from perfect-subtree
/// hashes: O(log n) subtree reads. Errors if `index >= tree_size`.
pub fn inclusion_proof_from_subtrees(
    index: u64,
    tree_size: u64,
    get: &mut dyn FnMut(SubtreeId) -> Hash,
) -> Result<Vec<Hash>> {
    if index >= tree_size {
        return Err(Error::invalid(
            "inclusion proof index",
            format!("leaf {index} is not in a tree of size {tree_size}"),
        ));
    }
    let mut out = Vec::with_capacity(64);
    // Iterative form of PATH: walk down from the root, remembering siblings, then reverse so the
    // leaf's sibling comes first.
    let (mut start, mut n, mut m) = (0u64, tree_size, index);
    while n > 1 {
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m < k {
            out.push(range_hash(start + k, n - k, get));
            n = k;
        } else {
            out.push(range_hash(start, k, get));
            start += k;
            m -= k;
            n -= k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The same proof as [`consistency_proof`] (`PROOF(old_size, D[new_size])`), from
/// perfect-subtree hashes: O(log n) subtree reads. Errors if `old_size > new_size`; empty for
/// `old_size == 0` and `old_size == new_size`.
pub fn consistency_proof_from_subtrees(
    old_size: u64,
    new_size: u64,
    get: &mut dyn FnMut(SubtreeId) -> Hash,
) -> Result<Vec<Hash>> {
    if old_size > new_size {
        return Err(Error::invalid(
            "consistency proof size",
            format!("old size {old_size} is larger than the new size {new_size}"),
        ));
    }
    let mut out = Vec::with_capacity(64);
    if old_size == 0 || old_size == new_size {
        return Ok(out);
    }
    // Iterative form of SUBPROOF(m, D[start : start + n], complete).
    let (mut start, mut n, mut m, mut complete) = (0u64, new_size, old_size, true);
    loop {
        if m == n {
            if !complete {
                out.push(range_hash(start, n, get));
            }
            break;
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m <= k {
            out.push(range_hash(start + k, n - k, get));
            n = k;
        } else {
            out.push(range_hash(start, k, get));
            start += k;
            m -= k;
            n -= k;
            complete = false;
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).expect("test vector hex");
        v.try_into().expect("32 bytes")
    }

    /// The RFC 9162 definition, written as directly as possible (reference implementation).
    fn naive_mth(d: &[&[u8]]) -> Hash {
        match d.len() {
            0 => Sha256::digest(b"").into(),
            1 => {
                let mut v = vec![0u8];
                v.extend_from_slice(d[0]);
                Sha256::digest(&v).into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut v = vec![1u8];
                v.extend_from_slice(&naive_mth(&d[..k]));
                v.extend_from_slice(&naive_mth(&d[k..]));
                Sha256::digest(&v).into()
            }
        }
    }

    fn naive_mth_of_hashes(l: &[Hash]) -> Hash {
        if l.len() == 1 {
            return l[0];
        }
        let mut k = 1;
        while k * 2 < l.len() {
            k *= 2;
        }
        let mut v = vec![1u8];
        v.extend_from_slice(&naive_mth_of_hashes(&l[..k]));
        v.extend_from_slice(&naive_mth_of_hashes(&l[k..]));
        Sha256::digest(&v).into()
    }

    fn naive_path(m: usize, d: &[&[u8]]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return vec![];
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m < k {
            let mut p = naive_path(m, &d[..k]);
            p.push(naive_mth(&d[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &d[k..]);
            p.push(naive_mth(&d[..k]));
            p
        }
    }

    fn naive_subproof(m: usize, d: &[&[u8]], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![naive_mth(d)] };
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m <= k {
            let mut p = naive_subproof(m, &d[..k], b);
            p.push(naive_mth(&d[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &d[k..], false);
            p.push(naive_mth(&d[..k]));
            p
        }
    }

    /// The 8 leaf inputs of the RFC 6962 / Certificate Transparency reference test vectors.
    const CT_INPUTS: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    fn ct_leaves() -> Vec<Hash> {
        CT_INPUTS.iter().map(|d| leaf_hash(d)).collect()
    }

    #[test]
    fn empty_tree_and_single_leaf() {
        assert_eq!(
            root(&[]),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(EMPTY_ROOT, <Hash>::from(Sha256::digest(b"")));
        // SHA-256(0x00), the hash of the empty leaf.
        assert_eq!(
            leaf_hash(b""),
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(root(&[leaf_hash(b"")]), leaf_hash(b""));
        // Domain separation: a node is not a leaf over the same 64 bytes.
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut cat = a.to_vec();
        cat.extend_from_slice(&b);
        assert_ne!(node_hash(&a, &b), leaf_hash(&cat));
    }

    #[test]
    fn ct_reference_roots() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = ct_leaves();
        for (i, want) in roots.iter().enumerate() {
            assert_eq!(root(&leaves[..=i]), h(want), "root of size {}", i + 1);
        }
    }

    #[test]
    fn ct_reference_proofs() {
        let leaves = ct_leaves();
        let r8 = root(&leaves);
        let p0 = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ]
        .map(h);
        assert_eq!(inclusion_proof(&leaves, 0).unwrap(), p0);
        assert!(verify_inclusion(&leaves[0], 0, 8, &p0, &r8));
        let p5 = [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]
        .map(h);
        assert_eq!(inclusion_proof(&leaves, 5).unwrap(), p5);
        assert!(verify_inclusion(&leaves[5], 5, 8, &p5, &r8));

        // Consistency 1 -> 8 is the audit path of leaf 0.
        assert_eq!(consistency_proof(&leaves, 1).unwrap(), p0);
        let c68 = [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]
        .map(h);
        assert_eq!(consistency_proof(&leaves, 6).unwrap(), c68);
        assert!(verify_consistency(6, 8, &root(&leaves[..6]), &r8, &c68));
        let c25 = [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ]
        .map(h);
        assert_eq!(consistency_proof(&leaves[..5], 2).unwrap(), c25);
        assert!(verify_consistency(
            2,
            5,
            &root(&leaves[..2]),
            &root(&leaves[..5]),
            &c25
        ));
    }

    /// Vectors from the vendored ATP conformance suite (`conformance/atp/fixtures/transparency-*`):
    /// an inclusion proof for leaf 3 of 8 and a consistency proof 4 -> 8, produced by another
    /// implementation.
    #[test]
    fn atp_conformance_vectors() {
        let root8 = h("ec38a2f3312fb0ad6b2ee34f2abcc0a3dbf28c82444da038b5f3505ad3eada9e");
        let root4 = h("c129e42e800e0d7b8cc86cfb23048830a56e6e9453797703f874089b7265dbce");
        let leaf3 = h("84d97aa4077eeac650af60087fd7afacea40531a4a54f8bb65e96d8faf1fa330");
        let path = [
            "2ec6c337f1120d96c0637e95752a84fc036530d3ecd1010a0432aa5aaa23515e",
            "668630319b60c026a6a07a8780bc7e0e55a1f7e2d53ae3451211612416abeb63",
            "d55d7780c96a0827bc35955770876e56c293b53ff4e9e496473617acf84f7699",
        ]
        .map(h);
        assert!(verify_inclusion(&leaf3, 3, 8, &path, &root8));
        assert!(!verify_inclusion(&leaf3, 2, 8, &path, &root8));
        let cpath = [h(
            "d55d7780c96a0827bc35955770876e56c293b53ff4e9e496473617acf84f7699",
        )];
        assert!(verify_consistency(4, 8, &root4, &root8, &cpath));
        assert!(!verify_consistency(4, 8, &root8, &root4, &cpath));
    }

    /// Structure for every size up to 33 against the naive reference, and every tamper rejected.
    #[test]
    fn proofs_match_reference_and_reject_tampering() {
        let data: Vec<Vec<u8>> = (0u32..33).map(|i| i.to_be_bytes().to_vec()).collect();
        for n in 1..=data.len() {
            let d: Vec<&[u8]> = data[..n].iter().map(|v| v.as_slice()).collect();
            let leaves: Vec<Hash> = d.iter().map(|x| leaf_hash(x)).collect();
            let r = root(&leaves);
            assert_eq!(r, naive_mth(&d), "root n={n}");
            let n64 = n as u64;
            // The root of the next tree size: a size only means something together with its root
            // (RFC 9162 binds both in a signed tree head), so "tampered size" is checked against it.
            let mut plus = leaves.clone();
            plus.push(leaf_hash(b"extra"));
            let r_plus = root(&plus);
            for m in 0..n {
                let p = inclusion_proof(&leaves, m as u64).unwrap();
                assert_eq!(p, naive_path(m, &d), "path m={m} n={n}");
                assert!(verify_inclusion(&leaves[m], m as u64, n64, &p, &r));
                assert!(!verify_inclusion(
                    &leaves[m],
                    m as u64,
                    n64 + 1,
                    &p,
                    &r_plus
                ));
                if n > 1 {
                    let r_minus = root(&leaves[..n - 1]);
                    assert!(!verify_inclusion(
                        &leaves[m],
                        m as u64,
                        n64 - 1,
                        &p,
                        &r_minus
                    ));
                }
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(!verify_inclusion(&leaves[m], other as u64, n64, &p, &r));
                    assert!(!verify_inclusion(&leaves[other], m as u64, n64, &p, &r));
                }
                for i in 0..p.len() {
                    let mut bad = p.clone();
                    bad[i][0] ^= 1;
                    assert!(!verify_inclusion(&leaves[m], m as u64, n64, &bad, &r));
                }
                let mut longer = p.clone();
                longer.push(r);
                assert!(!verify_inclusion(&leaves[m], m as u64, n64, &longer, &r));
            }
            assert!(inclusion_proof(&leaves, n64).is_err());
            for m in 1..n {
                let old = root(&leaves[..m]);
                let p = consistency_proof(&leaves, m as u64).unwrap();
                assert_eq!(p, naive_subproof(m, &d, true), "proof m={m} n={n}");
                assert!(
                    verify_consistency(m as u64, n64, &old, &r, &p),
                    "m={m} n={n}"
                );
                assert!(!verify_consistency(m as u64, n64, &r, &r, &p));
                assert!(!verify_consistency(m as u64, n64, &old, &old, &p));
                let old_plus = root(&leaves[..m + 1]);
                assert!(!verify_consistency(m as u64 + 1, n64, &old_plus, &r, &p));
                assert!(!verify_consistency(m as u64, n64 + 1, &old, &r_plus, &p));
                for i in 0..p.len() {
                    let mut bad = p.clone();
                    bad[i][31] ^= 0x80;
                    assert!(!verify_consistency(m as u64, n64, &old, &r, &bad));
                }
                assert!(!verify_consistency(
                    m as u64,
                    n64,
                    &old,
                    &r,
                    &p[..p.len() - 1]
                ));
            }
            assert_eq!(consistency_proof(&leaves, n64).unwrap(), Vec::<Hash>::new());
            assert!(verify_consistency(n64, n64, &r, &r, &[]));
            assert!(!verify_consistency(n64, n64, &r, &r, &[r]));
            assert!(verify_consistency(0, n64, &EMPTY_ROOT, &r, &[]));
            assert!(!verify_consistency(0, n64, &r, &r, &[]));
            assert!(consistency_proof(&leaves, n64 + 1).is_err());
        }
    }

    #[test]
    fn frontier_matches_root_and_round_trips() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), EMPTY_ROOT);
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.nodes().len(), f.size().count_ones() as usize);
            assert_eq!(f.root(), naive_mth_of_hashes(&leaves[..=i]));
            let again = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
            assert_eq!(again, f);
        }
        assert!(Frontier::from_parts(3, vec![EMPTY_ROOT]).is_err());
    }

    /// Builds the subtree table a store would hold after appending `leaves` one by one.
    fn subtree_table(leaves: &[Hash]) -> std::collections::HashMap<SubtreeId, Hash> {
        let mut f = Frontier::new();
        let mut table = std::collections::HashMap::new();
        for l in leaves {
            for (id, h) in closed_subtrees(&f, *l).expect("size matches") {
                table.insert(id, h);
            }
            f.push(*l);
            assert_eq!(table.get(&(0, f.size() - 1)), Some(l));
        }
        table
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The subtree-based root and proofs equal the leaf-based ones for random sizes.
        #[test]
        fn subtree_proofs_match_leaf_proofs(
            size in 1u64..700,
            a in 0u64..10_000,
            b in 0u64..10_000,
        ) {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let table = subtree_table(&leaves);
            let mut reads = 0usize;
            let mut get = |id: SubtreeId| {
                reads += 1;
                *table.get(&id).expect("only closed subtrees are read")
            };
            let n = 1 + b % size; // tree size in 1..=size
            let m = a % (n + 1); // old size in 0..=n
            let idx = a % n;
            let r = root_from_subtrees(n, &mut get);
            proptest::prop_assert_eq!(r, root(&leaves[..n as usize]));
            let p = inclusion_proof_from_subtrees(idx, n, &mut get).unwrap();
            proptest::prop_assert_eq!(&p, &inclusion_proof(&leaves[..n as usize], idx).unwrap());
            proptest::prop_assert!(verify_inclusion(&leaves[idx as usize], idx, n, &p, &r));
            let c = consistency_proof_from_subtrees(m, n, &mut get).unwrap();
            proptest::prop_assert_eq!(&c, &consistency_proof(&leaves[..n as usize], m).unwrap());
            let old = root_from_subtrees(m, &mut get);
            proptest::prop_assert!(verify_consistency(m, n, &old, &r, &c));
            proptest::prop_assert!(inclusion_proof_from_subtrees(n, n, &mut get).is_err());
            proptest::prop_assert!(consistency_proof_from_subtrees(n + 1, n, &mut get).is_err());
            // O(log n): each path element costs at most log2(n)+1 reads, the root at most 64.
            let log = 64 - n.leading_zeros() as usize;
            proptest::prop_assert!(reads <= 3 * (log + 1) * (log + 1) + 64, "reads {reads}");
        }
    }
}
