//! Drill-down: the items behind a number of the dashboard (a pair cell, a label pair, a label,
//! a slice), where the labelers disagree. Read from the current annotations, so a lead
//! following a link never lands on items that were fixed since the last refresh.
use app::api_types::ItemLabels;

use super::dataset::Dataset;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Items both labelers labeled, with different answers.
    Pair(String, String),
    /// Items where one labeler chose A (and not B) and another chose B (and not A).
    Labels(String, String),
    /// Items where some labelers chose the label and others did not.
    Label(String),
    /// Items of the slice (meta ATTR = VALUE) with differing answers.
    Slice(String, String),
}

impl Filter {
    /// From the query parameters; exactly one filter must be given.
    pub fn parse(pair: Option<&str>, labels: Option<&str>, label: Option<&str>, slice: Option<&str>) -> Result<Filter, String> {
        let two = |s: &str, what: &str| -> Result<(String, String), String> {
            match s.split_once(',') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Ok((a.trim().into(), b.trim().into())),
                _ => Err(format!("{what} must be two names separated by a comma, e.g. {what}=X,Y")),
            }
        };
        let given = [pair, labels, label, slice].iter().filter(|p| p.is_some()).count();
        if given != 1 {
            return Err("give exactly one of pair=U1,U2, labels=A,B, label=NAME or slice=ATTR:VALUE".into());
        }
        if let Some(p) = pair {
            let (a, b) = two(p, "pair")?;
            return Ok(Filter::Pair(a, b));
        }
        if let Some(l) = labels {
            let (a, b) = two(l, "labels")?;
            return Ok(Filter::Labels(a, b));
        }
        if let Some(l) = label {
            if l.is_empty() {
                return Err("label must name a label".into());
            }
            return Ok(Filter::Label(l.into()));
        }
        let s = slice.expect("one was given");
        match s.split_once(':') {
            Some((attr, value)) if !attr.is_empty() => Ok(Filter::Slice(attr.into(), value.into())),
            _ => Err("slice must be ATTR:VALUE, e.g. slice=region:eu".into()),
        }
    }
}

fn sorted(labels: &[u32]) -> Vec<u32> {
    let mut v = labels.to_vec();
    v.sort_unstable();
    v
}

fn differ(d: &Dataset, ix: usize) -> bool {
    let mut answers = d.answers(ix);
    let first = answers.next().map(|(_, l)| sorted(l));
    answers.len() >= 1 && answers.any(|(_, l)| Some(sorted(l)) != first)
}

/// Whether the item (by index into `d.items`) matches the filter.
pub fn matches(d: &Dataset, ix: usize, filter: &Filter) -> bool {
    let code = |name: &str| d.users.iter().position(|(_, n)| n == name);
    let mut answers = d.answers(ix);
    match filter {
        Filter::Pair(a, b) => {
            let (Some(a), Some(b)) = (code(a), code(b)) else { return false };
            let find = |c: usize| d.answers(ix).find(|(x, _)| *x == c).map(|(_, l)| sorted(l));
            matches!((find(a), find(b)), (Some(x), Some(y)) if x != y)
        }
        Filter::Labels(a, b) => {
            let (Some(a), Some(b)) = (d.label_code(a), d.label_code(b)) else { return false };
            let chose = |l: &[u32], x: u32, y: u32| l.contains(&x) && !l.contains(&y);
            answers.clone().any(|(_, l)| chose(l, a, b)) && answers.any(|(_, l)| chose(l, b, a))
        }
        Filter::Label(name) => {
            let Some(name) = d.label_code(name) else { return false };
            let with = answers.clone().filter(|(_, l)| l.contains(&name)).count();
            with > 0 && with < answers.len()
        }
        Filter::Slice(attr, value) => d.slice_of(ix, attr) == Some(value.as_str()) && differ(d, ix),
    }
}

/// The matching items, in id order: (index into `d.items`), all of them.
pub fn disagreeing(d: &Dataset, filter: &Filter) -> Vec<usize> {
    (0..d.items.len()).filter(|&ix| matches(d, ix, filter)).collect()
}

/// Each labeler's answer on the item (by index into `d.items`), in annotation order.
pub fn answers(d: &Dataset, ix: usize) -> Vec<ItemLabels> {
    d.answers(ix).map(|(a, l)| ItemLabels { labeler: d.users[a].1.clone(), labels: d.label_texts(l) }).collect()
}

#[cfg(test)]
mod tests {
    use super::super::dataset::tests::{ann, item, users};
    use super::*;

    fn data() -> Dataset {
        let rows = [
            ann(1, 1, &["a"], 0), ann(1, 2, &["a"], 0),
            ann(2, 1, &["a"], 0), ann(2, 2, &["b"], 0),
            ann(3, 1, &["b"], 0), ann(3, 3, &["c"], 0),
        ];
        let items = [item(1, r#"{"r":"eu"}"#), item(2, r#"{"r":"eu"}"#), item(3, r#"{"r":"us"}"#)];
        Dataset::build(false, &["a".into(), "b".into(), "c".into()], &rows, &items, &users()).unwrap()
    }

    #[test]
    fn each_filter_finds_its_disagreements() {
        let d = data();
        let ids = |f: Filter| disagreeing(&d, &f).into_iter().map(|i| d.items[i].id).collect::<Vec<_>>();
        assert_eq!(ids(Filter::Pair("u1".into(), "u2".into())), vec![2]);
        assert_eq!(ids(Filter::Pair("u2".into(), "u1".into())), vec![2]);
        assert_eq!(ids(Filter::Pair("u1".into(), "nobody".into())), Vec::<i64>::new());
        assert_eq!(ids(Filter::Labels("b".into(), "a".into())), vec![2]);
        assert_eq!(ids(Filter::Label("b".into())), vec![2, 3]);
        assert_eq!(ids(Filter::Slice("r".into(), "eu".into())), vec![2]);
        assert_eq!(ids(Filter::Slice("r".into(), "us".into())), vec![3]);
        assert_eq!(answers(&d, 1)[1], ItemLabels { labeler: "u2".into(), labels: vec!["b".into()] });
    }

    #[test]
    fn parse_wants_exactly_one_well_formed_filter() {
        assert_eq!(Filter::parse(Some("ann, bob"), None, None, None), Ok(Filter::Pair("ann".into(), "bob".into())));
        assert_eq!(Filter::parse(None, None, None, Some("region:eu:west")), Ok(Filter::Slice("region".into(), "eu:west".into())));
        assert!(Filter::parse(None, None, None, None).is_err());
        assert!(Filter::parse(Some("a,b"), Some("x,y"), None, None).is_err());
        assert!(Filter::parse(Some("ann"), None, None, None).unwrap_err().contains("pair=X,Y"));
        assert!(Filter::parse(None, None, None, Some("region")).is_err());
    }
}
