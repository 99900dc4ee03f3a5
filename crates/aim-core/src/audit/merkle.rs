//! RFC 9162 (Certificate Transparency v2) Merkle trees: tree hash, inclusion and consistency
//! proofs, and a compact-range [`Frontier`] for O(log n) appends.
//!
//! Invariants:
//! - `leaf_hash(d) = SHA-256(0x00 || d)`, `node_hash(l, r) = SHA-256(0x01 || l || r)`; the hash of
//!   the empty tree is `SHA-256("")`. The 0x00/0x01 prefixes make a leaf never collide with a node.
//! - For `n > 1` leaves, `MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))` with `k` the largest
//!   power of two smaller than `n` (RFC 9162 §2.1.1).
//! - Proof verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 exactly, so proofs produced here are
//!   checkable by any independent CT-style verifier, and vice versa.
//! - This is the one Merkle implementation of the project: the audit log and the ATP proof
//!   verification both use it.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash over already-hashed leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of all `leaves` (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>> {
    let idx = usize::try_from(index).map_err(|_| Error::invalid("leaf index", index))?;
    if idx >= leaves.len() {
        return Err(Error::invalid(
            "leaf index",
            format!("{index} is outside a tree of size {}", leaves.len()),
        ));
    }
    let mut path = Vec::new();
    path_rec(idx, leaves, &mut path);
    Ok(path)
}

fn path_rec(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_rec(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path_rec(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
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
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// The consistency proof between the first `old_size` leaves and all `leaves`
/// (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals the tree size.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>> {
    let m = usize::try_from(old_size).map_err(|_| Error::invalid("tree size", old_size))?;
    if m > leaves.len() {
        return Err(Error::invalid(
            "tree size",
            format!("{old_size} is larger than the tree ({})", leaves.len()),
        ));
    }
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !b {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], b, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `new_size` leaves with root
/// `new_root` extends the tree of `old_size` leaves with root `old_root`.
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
        // Every tree extends the empty tree; there is nothing to prove.
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    &fr == old_root && &sr == new_root && sn == 0
}

/// The right edge of a Merkle tree: the roots of its maximal perfect subtrees, largest first.
/// Appending a leaf is O(log n) amortised and the root is available at any size without keeping
/// the leaves — how a server keeps a per-organization tree head for tens of millions of entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash) of each perfect subtree, strictly decreasing heights.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (0u32, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != cur.0 {
                break;
            }
            self.nodes.pop();
            cur = (h + 1, node_hash(&left, &cur.1));
        }
        self.nodes.push(cur);
        self.size += 1;
    }

    /// The tree hash of all leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, last)) = it.next() else {
            return empty_root();
        };
        it.fold(last, |acc, (_, left)| node_hash(left, &acc))
    }

    /// The subtree hashes (largest first), e.g. to persist the frontier.
    pub fn nodes(&self) -> impl Iterator<Item = &Hash> {
        self.nodes.iter().map(|(_, h)| h)
    }

    /// Rebuilds a frontier from its size and subtree hashes as returned by [`Frontier::nodes`].
    pub fn from_parts(size: u64, hashes: &[Hash]) -> Result<Self> {
        let heights: Vec<u32> = (0..64).rev().filter(|b| size >> b & 1 == 1).collect();
        if heights.len() != hashes.len() {
            return Err(Error::invalid(
                "Merkle frontier",
                format!(
                    "a tree of size {size} has {} subtrees, got {}",
                    heights.len(),
                    hashes.len()
                ),
            ));
        }
        Ok(Frontier {
            size,
            nodes: heights.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }
}

/// Lowercase hex of a hash.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// Parses 64 hex digits (either case) into a hash.
pub fn from_hex(s: &str) -> Result<Hash> {
    let v = hex::decode(s).map_err(|e| Error::invalid("hash", format!("{s:?}: {e}")))?;
    v.try_into()
        .map_err(|_| Error::invalid("hash", format!("{s:?} is not 32 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf-{i}").as_bytes()))
            .collect()
    }

    /// The definition of RFC 9162 §2.1.1, written independently of `root` (bottom-up pairing,
    /// carrying an odd last node up unchanged — which yields the same tree).
    fn reference_root(d: &[Hash]) -> Hash {
        if d.is_empty() {
            return empty_root();
        }
        let mut level = d.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
        }
        level[0]
    }

    #[test]
    fn known_values() {
        assert_eq!(
            to_hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // leaf hash of the empty string: SHA-256(0x00)
        assert_eq!(
            to_hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let d = leaves(3);
        assert_eq!(root(&d), node_hash(&node_hash(&d[0], &d[1]), &d[2]));
    }

    #[test]
    fn root_matches_reference_and_frontier_for_sizes_0_to_70() {
        let all = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for n in 0..=70 {
            let d = &all[..n];
            assert_eq!(root(d), reference_root(d), "size {n}");
            if n > 0 {
                f.push(all[n - 1]);
            }
            assert_eq!(f.root(), root(d), "frontier size {n}");
            let g =
                Frontier::from_parts(f.size(), &f.nodes().copied().collect::<Vec<_>>()).unwrap();
            assert_eq!(g, f);
        }
        assert!(Frontier::from_parts(3, &[empty_root()]).is_err());
    }

    #[test]
    fn every_inclusion_proof_verifies_and_tampering_fails() {
        for n in 1..=33usize {
            let d = leaves(n);
            let r = root(&d);
            let bigger = root(&leaves(n + 1));
            for i in 0..n {
                let p = inclusion_proof(&d, i as u64).unwrap();
                assert!(
                    verify_inclusion(&d[i], i as u64, n as u64, &p, &r),
                    "n={n} i={i}"
                );
                assert!(!verify_inclusion(
                    &leaf_hash(b"x"),
                    i as u64,
                    n as u64,
                    &p,
                    &r
                ));
                // the proof does not prove membership in a bigger tree
                assert!(!verify_inclusion(
                    &d[i],
                    i as u64,
                    n as u64 + 1,
                    &p,
                    &bigger
                ));
                if n > 1 {
                    assert!(!verify_inclusion(
                        &d[i],
                        ((i + 1) % n) as u64,
                        n as u64,
                        &p,
                        &r
                    ));
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(&d[i], i as u64, n as u64, &bad, &r));
                    assert!(!verify_inclusion(
                        &d[i],
                        i as u64,
                        n as u64,
                        &p[..p.len() - 1],
                        &r
                    ));
                }
            }
            assert!(inclusion_proof(&d, n as u64).is_err());
            assert!(!verify_inclusion(&d[0], n as u64, n as u64, &[], &r));
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        let all = leaves(40);
        for n in 1..=40usize {
            let d = &all[..n];
            let rn = root(d);
            for m in 0..=n {
                let rm = root(&d[..m]);
                let p = consistency_proof(d, m as u64).unwrap();
                assert!(
                    verify_consistency(m as u64, n as u64, &rm, &rn, &p),
                    "m={m} n={n}"
                );
                if m > 0 && m < n {
                    let mut bad = p.clone();
                    bad[0][31] ^= 1;
                    assert!(!verify_consistency(m as u64, n as u64, &rm, &rn, &bad));
                    // a rewritten old tree is not consistent
                    let mut other = d.to_vec();
                    other[0] = leaf_hash(b"rewritten");
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &root(&other[..m]),
                        &rn,
                        &p
                    ));
                    let bigger = root(&leaves(n + 1));
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64 + 1,
                        &rm,
                        &bigger,
                        &p
                    ));
                }
            }
        }
        assert!(!verify_consistency(5, 4, &empty_root(), &empty_root(), &[]));
    }
}
