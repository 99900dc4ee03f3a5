//! Property tests of the capability grammar.

use aim_policy::{Capability, Grant, GrantSet};
use proptest::prelude::*;

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_.-]{0,15}"
}

fn domain() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z0-9]{1,6}){0,2}")
}

fn capability() -> impl Strategy<Value = String> {
    (domain(), segment(), segment()).prop_map(|(d, n, a)| match d {
        Some(d) => format!("{d}/{n}:{a}"),
        None => format!("{n}:{a}"),
    })
}

proptest! {
    #[test]
    fn well_formed_capabilities_parse_and_round_trip(s in capability()) {
        let c = Capability::parse(&s).unwrap();
        prop_assert_eq!(c.to_string(), s.clone());
        // A capability grants itself, and its namespace wildcard grants it.
        prop_assert!(Grant::from(c.clone()).matches(&c));
        prop_assert!(c.namespace_grant().matches(&c));
        prop_assert!(Grant::parse(&s).unwrap().matches(&c));
    }

    #[test]
    fn arbitrary_strings_never_panic_and_accepted_ones_round_trip(s in "\\PC{0,40}") {
        if let Ok(c) = Capability::parse(&s) {
            prop_assert_eq!(c.to_string(), s.clone());
            prop_assert!(s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()));
        }
        if let Ok(g) = Grant::parse(&s) {
            prop_assert_eq!(g.to_string(), s);
        }
    }

    #[test]
    fn upper_case_is_refused(s in capability(), i in any::<prop::sample::Index>()) {
        let letters: Vec<usize> = s.char_indices().filter(|(_, c)| c.is_ascii_lowercase()).map(|(i, _)| i).collect();
        prop_assume!(!letters.is_empty());
        let at = letters[i.index(letters.len())];
        let mut t = s.clone();
        t.replace_range(at..at + 1, &s[at..at + 1].to_ascii_uppercase());
        prop_assert!(Capability::parse(&t).is_err());
    }

    #[test]
    fn a_grant_matches_exactly_what_it_names(a in capability(), b in capability()) {
        let ca = Capability::parse(&a).unwrap();
        let cb = Capability::parse(&b).unwrap();
        let g = Grant::parse(&a).unwrap();
        prop_assert_eq!(g.matches(&cb), ca == cb);
        let w = ca.namespace_grant();
        prop_assert_eq!(
            w.matches(&cb),
            ca.domain() == cb.domain() && ca.namespace() == cb.namespace()
        );
    }

    #[test]
    fn grant_set_is_the_union_of_its_grants(gs in proptest::collection::vec(capability(), 0..6), c in capability()) {
        let set = GrantSet::parse(&gs).unwrap();
        let cap = Capability::parse(&c).unwrap();
        let any = gs.iter().any(|g| Grant::parse(g).unwrap().matches(&cap));
        prop_assert_eq!(set.is_granted(&cap), any);
    }
}
