//! The `#[cluster_test]` attribute: keeps the test function as written and registers a
//! `harness::TestDef` for it with `inventory`, so a file dropped into `tests_d/<component>/` needs
//! no registration list.
//!
//! Use it through `harness` (`use harness::prelude::*;`); this crate is an implementation detail.

use proc_macro::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, LitInt, LitStr};

mod matrix;

/// Marks `async fn name(cluster: &Cluster) -> TestResult` (or `async fn name() -> TestResult`,
/// for a trial that needs no cluster) as a test run by the harness.
///
/// Arguments:
/// - `cluster = "etcd3"`: the spec `fixtures/clusters/etcd3.toml` (a value with a `/` or ending
///   in `.toml` is a path relative to the crate's manifest directory);
/// - `nodes = 3` and optionally `image = "cluster-sim/node"`: an inline cluster of idle nodes;
/// - `timeout = "90s"`: the test's deadline (else the spec's `timeout`, else the default);
/// - `ignore` or `ignore = "reason"`: skipped unless `--ignored` or `--include-ignored`;
/// - `retries = 2`: a failing test is tried again, up to twice more, each time on a fresh
///   cluster; one that then passes is reported flaky (`CLUSTER_SIM_RETRIES` overrides this).
/// - `requires = ["netem"]`: kernel features the test needs (`nft`, `tc`, `htb`, `netem`,
///   `fuse`); where the backend lacks one, the test is reported skipped with the reason.
/// - `share = "group"`: the group's tests take turns on one cluster, reset between them with the
///   spec's `[reuse] reset` command (a failed test's cluster is replaced);
/// - `matrix(nodes = [3, 5], snapshot_count = [100, 10000])`: one trial per combination, named
///   `fn[nodes=3,snapshot_count=100]` (see `matrix.rs`). The function may take any axis as a
///   parameter after the cluster (`nodes: u32`), typed and checked at compile time.
///
/// A function without a parameter needs no cluster and must not name one: it runs without
/// provisioning anything (the harness's overhead is then that of a plain test).
#[proc_macro_attribute]
pub fn cluster_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Marks `fn name() -> Walks<S>` as a walk definition: one trial per generated walk, all the
/// walks on one cluster (see `harness::walk`).
///
/// Arguments: `cluster = "redis3"` or `nodes = N` (and `image`), `timeout` (each walk's own
/// deadline, and each serial run's), `ignore`, `requires`, as on `#[cluster_test]`. Walks are not
/// retried (replay one alone with `--exact`), take no `matrix` and already share their cluster.
#[proc_macro_attribute]
pub fn cluster_walk(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_walk(attr.into(), item.into()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_walk(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args = parse_args(attr.clone())?;
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    let plain_attr = || {
        attr.clone()
            .into_iter()
            .next()
            .map(|t| t.span())
            .unwrap_or_else(proc_macro2::Span::call_site)
    };
    if let Some(m) = &args.matrix {
        return Err(Error::new(
            m.span,
            "walks take no `matrix`: make the values an action's options",
        ));
    }
    if let Some(r) = &args.retries {
        return Err(Error::new(
            r.span(),
            "walks are not retried: replay one alone with `cargo test -- --exact <walk>`",
        ));
    }
    if let Some(s) = &args.share {
        return Err(Error::new(
            s.span(),
            "the walks of a definition already share one cluster",
        ));
    }
    if args.cluster.is_none() && args.nodes.is_none() {
        return Err(Error::new(
            plain_attr(),
            "walks run on a cluster: add `cluster = \"<spec>\"` or `nodes = N`",
        ));
    }
    if sig.asyncness.is_some() {
        return Err(Error::new(sig.fn_token.span(), "a #[cluster_walk] function is a plain `fn` returning `Walks<State>`; the actions are async"));
    }
    if !sig.inputs.is_empty() {
        return Err(Error::new(
            sig.inputs.span(),
            "a #[cluster_walk] function takes no parameters",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "a #[cluster_walk] function cannot be generic",
        ));
    }
    if matches!(sig.output, syn::ReturnType::Default) {
        return Err(Error::new(
            sig.ident.span(),
            "a #[cluster_walk] function returns `Walks<State>`",
        ));
    }
    let common = Common::of(&args)?;
    let Common {
        cluster,
        timeout_ms,
        ignore,
        requires,
        ..
    } = common;
    let ident = &sig.ident;
    let name = ident.to_string();
    let line = quote_spanned!(ident.span() => ::core::line!());
    Ok(quote! {
        #func

        const _: () = {
            fn __cluster_walk_plan() -> ::std::boxed::Box<dyn ::harness::walk::Plan> {
                ::std::boxed::Box::new(#ident())
            }
            ::harness::inventory::submit! {
                ::harness::TestDef::new(
                    ::core::module_path!(),
                    #name,
                    ::core::file!(),
                    #line,
                    ::core::env!("CARGO_MANIFEST_DIR"),
                    ::harness::TestBody::Walks(__cluster_walk_plan),
                )
                #cluster
                #timeout_ms
                #ignore
                #requires
            }
        };
    })
}

/// The attribute arguments both `#[cluster_test]` and `#[cluster_walk]` take, as builder calls.
struct Common {
    request: Option<proc_macro2::TokenStream>,
    cluster: proc_macro2::TokenStream,
    timeout_ms: proc_macro2::TokenStream,
    ignore: proc_macro2::TokenStream,
    requires: proc_macro2::TokenStream,
}

impl Common {
    fn of(args: &Args) -> syn::Result<Self> {
        let request = match (&args.cluster, &args.nodes) {
            (Some(_), Some(n)) => {
                return Err(Error::new(
                    n.span(),
                    "give either `cluster = \"<spec>\"` or `nodes = N`, not both",
                ))
            }
            (Some(c), None) => {
                if let Some(i) = &args.image {
                    return Err(Error::new(
                        i.span(),
                        "`image` goes with `nodes = N`; a spec names its own image",
                    ));
                }
                if c.value().trim().is_empty() {
                    return Err(Error::new(c.span(), "the cluster spec name is empty"));
                }
                Some(quote!(::harness::ClusterRequest::Spec(#c)))
            }
            (None, Some(n)) => {
                let count: u32 = n.base10_parse()?;
                if count == 0 {
                    return Err(Error::new(
                        n.span(),
                        "`nodes` must be at least 1; for a test without a cluster, drop the \
                         arguments and the `cluster` parameter",
                    ));
                }
                let image = match &args.image {
                    Some(i) => quote!(::core::option::Option::Some(#i)),
                    None => quote!(::core::option::Option::None),
                };
                Some(quote!(::harness::ClusterRequest::Inline { nodes: #count, image: #image }))
            }
            (None, None) => {
                if let Some(i) = &args.image {
                    return Err(Error::new(i.span(), "`image` needs `nodes = N`"));
                }
                None
            }
        };
        let timeout_ms = match &args.timeout {
            Some(t) => {
                let d = humantime::parse_duration(&t.value()).map_err(|e| {
                    Error::new(t.span(), format!("bad timeout {:?}: {e}", t.value()))
                })?;
                if d.is_zero() {
                    return Err(Error::new(t.span(), "the timeout must be above zero"));
                }
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                quote!(.timeout_ms(#ms))
            }
            None => quote!(),
        };
        let ignore = match &args.ignore {
            Some(Some(reason)) => quote!(.ignore(#reason)),
            Some(None) => quote!(.ignore("")),
            None => quote!(),
        };
        let cluster = match &request {
            Some(r) => quote!(.cluster(#r)),
            None => quote!(),
        };
        let requires = match &args.requires {
            Some(list) if !list.is_empty() => quote!(.requires(&[#(#list),*])),
            _ => quote!(),
        };
        Ok(Self {
            request,
            cluster,
            timeout_ms,
            ignore,
            requires,
        })
    }
}

#[derive(Default)]
struct Args {
    cluster: Option<LitStr>,
    nodes: Option<LitInt>,
    image: Option<LitStr>,
    timeout: Option<LitStr>,
    ignore: Option<Option<LitStr>>,
    retries: Option<LitInt>,
    requires: Option<Vec<LitStr>>,
    matrix: Option<matrix::Matrix>,
    share: Option<LitStr>,
}

/// The names `requires` takes: `cluster_sim_core::fault::KERNEL_FEATURES` (a unit test checks the
/// two agree; a proc-macro crate cannot read the other at compile time).
const FEATURES: &[&str] = &["nft", "tc", "htb", "netem", "fuse"];

/// Sets `slot` from `parse`, unless the argument was already given.
fn once<T>(
    slot: &mut Option<T>,
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
    parse: impl FnOnce(&syn::meta::ParseNestedMeta<'_>) -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!("`{key}` is given more than once")));
    }
    *slot = Some(parse(meta)?);
    Ok(())
}

/// `key = <literal>`.
fn value<T: syn::parse::Parse>(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<T> {
    meta.value()?.parse()
}

/// `requires = ["netem", ...]`: string literals naming known features.
fn parse_requires(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let list: syn::ExprArray = meta.value()?.parse()?;
    let mut names = Vec::new();
    for e in &list.elems {
        let lit = match e {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => s.clone(),
            other => {
                return Err(Error::new(
                    other.span(),
                    "`requires` takes a list of strings: requires = [\"netem\"]",
                ))
            }
        };
        if !FEATURES.contains(&lit.value().as_str()) {
            return Err(Error::new(
                lit.span(),
                format!(
                    "unknown requirement {:?}; expected one of {}",
                    lit.value(),
                    FEATURES.join(", ")
                ),
            ));
        }
        names.push(lit);
    }
    Ok(names)
}

fn parse_args(attr: proc_macro2::TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "cluster" => once(&mut args.cluster, &meta, &key, value),
            "nodes" => once(&mut args.nodes, &meta, &key, value),
            "image" => once(&mut args.image, &meta, &key, value),
            "timeout" => once(&mut args.timeout, &meta, &key, value),
            "retries" => once(&mut args.retries, &meta, &key, value),
            "share" => once(&mut args.share, &meta, &key, value),
            "ignore" => once(&mut args.ignore, &meta, &key, |m| {
                // `ignore` alone, or `ignore = "reason"`.
                if m.input.peek(syn::Token![=]) {
                    Ok(Some(m.value()?.parse()?))
                } else {
                    Ok(None)
                }
            }),
            "requires" => once(&mut args.requires, &meta, &key, parse_requires),
            "matrix" => once(&mut args.matrix, &meta, &key, matrix::parse),
            _ => Err(meta.error(
                "unknown argument; expected `cluster`, `nodes`, `image`, `timeout`, `retries`, \
                     `ignore`, `requires`, `share` or `matrix`",
            )),
        }
    });
    parser.parse2(attr)?;
    Ok(args)
}

/// The print macros std offers and `harness` captures.
const PRINTS: &[(&str, &str)] = &[
    ("println", "__capture_println"),
    ("eprintln", "__capture_eprintln"),
    ("print", "__capture_print"),
    ("eprint", "__capture_eprint"),
];

/// Rewrites `println!(..)` (and `eprintln!`, `print!`, `eprint!`) written with a bare name to
/// `::harness::__capture_println!(..)`, inside nested macro calls too, so what a test prints
/// goes to its own log. A qualified path (`std::println!`) is left alone: an explicit way out.
fn capture_prints(ts: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    use proc_macro2::{Group, Ident, Punct, Spacing, TokenTree};
    let tokens: Vec<TokenTree> = ts.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    for (i, tt) in tokens.iter().enumerate() {
        match tt {
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), capture_prints(g.stream()));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            TokenTree::Ident(id) => {
                let bang_next =
                    matches!(tokens.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                let qualified = i > 0
                    && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == ':' || p.as_char() == '.');
                let target = PRINTS
                    .iter()
                    .find(|(name, _)| id == name)
                    .map(|(_, to)| *to);
                match target {
                    Some(to) if bang_next && !qualified => {
                        let span = id.span();
                        for part in [
                            TokenTree::Punct(Punct::new(':', Spacing::Joint)),
                            TokenTree::Punct(Punct::new(':', Spacing::Alone)),
                            TokenTree::Ident(Ident::new("harness", span)),
                            TokenTree::Punct(Punct::new(':', Spacing::Joint)),
                            TokenTree::Punct(Punct::new(':', Spacing::Alone)),
                            TokenTree::Ident(Ident::new(to, span)),
                        ] {
                            out.push(part);
                        }
                    }
                    _ => out.push(tt.clone()),
                }
            }
            _ => out.push(tt.clone()),
        }
    }
    out.into_iter().collect()
}

fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args = parse_args(attr)?;
    let mut func: ItemFn = syn::parse2(item)?;
    let block = capture_prints(func.block.to_token_stream());
    *func.block = syn::parse2(block)?;
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span(),
            "a #[cluster_test] function must be `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "a #[cluster_test] function cannot be generic",
        ));
    }
    // With a matrix, parameters named after axes follow the cluster (if any).
    let axis_params = match &args.matrix {
        Some(m) => {
            let has_cluster = args.cluster.is_some() || args.nodes.is_some();
            m.split_params(sig, has_cluster)?
        }
        None => Vec::new(),
    };
    let inputs = sig.inputs.len() - axis_params.len();
    let wants_cluster = match inputs {
        0 => false,
        1 => match &sig.inputs[0] {
            FnArg::Typed(_) => true,
            FnArg::Receiver(r) => {
                return Err(Error::new(r.span(), "a #[cluster_test] cannot take `self`"))
            }
        },
        _ => {
            return Err(Error::new(
                sig.inputs.span(),
                "a #[cluster_test] function takes one parameter, `cluster: &Cluster`, or none \
                 (plus, with `matrix(...)`, parameters named after its axes)",
            ))
        }
    };
    if let Some(m) = &args.matrix {
        if m.has_axis("nodes") && args.cluster.is_none() && args.nodes.is_none() {
            return Err(Error::new(
                m.span,
                "a matrix axis `nodes` sizes the cluster: add `cluster = \"<spec>\"` or `nodes = N`",
            ));
        }
    }

    let Common {
        request,
        cluster,
        timeout_ms,
        ignore,
        requires,
    } = Common::of(&args)?;
    match (&request, wants_cluster) {
        (None, true) => {
            return Err(Error::new(
                sig.inputs.span(),
                "this test takes a cluster: add `cluster = \"<spec>\"` or `nodes = N` to \
                 #[cluster_test(...)], or drop the parameter for a test that needs none",
            ))
        }
        (Some(_), false) => {
            return Err(Error::new(
                sig.ident.span(),
                "a test given a cluster takes it as its parameter: `cluster: &Cluster`",
            ))
        }
        _ => {}
    }

    let retries = match &args.retries {
        Some(n) => {
            let v: u32 = n.base10_parse()?;
            if v > 20 {
                return Err(Error::new(n.span(), "at most 20 retries"));
            }
            quote!(.retries(#v))
        }
        None => quote!(),
    };

    let share = match &args.share {
        Some(g) if request.is_none() => {
            return Err(Error::new(
                g.span(),
                "`share` groups tests on one cluster: the test needs a cluster",
            ))
        }
        Some(g) if g.value().trim().is_empty() => {
            return Err(Error::new(g.span(), "the share group's name is empty"))
        }
        Some(g) => quote!(.share(#g)),
        None => quote!(),
    };
    let ident = &sig.ident;
    let name = ident.to_string();
    // Each axis parameter is read from the running case (values type-checked below).
    let fetch: Vec<proc_macro2::TokenStream> = axis_params
        .iter()
        .map(|(axis, ty)| {
            let var = quote::format_ident!("__matrix_{}", axis);
            quote!(let #var: #ty = ::harness::__param(#axis);)
        })
        .collect();
    let pass: Vec<proc_macro2::Ident> = axis_params
        .iter()
        .map(|(axis, _)| quote::format_ident!("__matrix_{}", axis))
        .collect();
    let checks = match &args.matrix {
        Some(m) => m.type_checks(&axis_params),
        None => quote!(),
    };
    let matrix = match &args.matrix {
        Some(m) => {
            let axes = m.axes_tokens();
            quote!(.matrix(#axes))
        }
        None => quote!(),
    };
    let (runner, body) = if wants_cluster {
        (
            quote! {
                fn __cluster_test_run(cluster: ::harness::Cluster) -> ::harness::TestFuture {
                    #(#fetch)*
                    ::std::boxed::Box::pin(async move { #ident(&cluster #(, #pass)*).await })
                }
            },
            quote!(::harness::TestBody::Cluster(__cluster_test_run)),
        )
    } else {
        (
            quote! {
                fn __cluster_test_run() -> ::harness::TestFuture {
                    #(#fetch)*
                    ::std::boxed::Box::pin(#ident(#(#pass),*))
                }
            },
            quote!(::harness::TestBody::Plain(__cluster_test_run)),
        )
    };
    let line = quote_spanned!(ident.span() => ::core::line!());
    Ok(quote! {
        #func

        const _: () = {
            #checks
            #runner
            ::harness::inventory::submit! {
                ::harness::TestDef::new(
                    ::core::module_path!(),
                    #name,
                    ::core::file!(),
                    #line,
                    ::core::env!("CARGO_MANIFEST_DIR"),
                    #body,
                )
                #cluster
                #timeout_ms
                #ignore
                #retries
                #requires
                #matrix
                #share
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_takes_the_features_cluster_sim_probes() {
        assert_eq!(FEATURES, cluster_sim_core::fault::KERNEL_FEATURES);
        let ok = parse_args(quote!(requires = ["netem", "htb"])).unwrap();
        assert_eq!(ok.requires.map(|v| v.len()), Some(2));
        let bad = parse_args(quote!(requires = ["warp"])).err().unwrap();
        assert!(
            bad.to_string().contains("unknown requirement \"warp\""),
            "{bad}"
        );
    }

    #[test]
    fn prints_in_the_body_are_captured_but_qualified_ones_are_not() {
        let body: proc_macro2::TokenStream = quote! {{
            println!("a {}", 1);
            let _ = format!("{}", { eprint!("b"); 2 });
            std::println!("kept");
            x.println!();
            let println = 3;
        }};
        let out = capture_prints(body).to_string();
        assert!(
            out.contains(":: harness :: __capture_println ! (\"a {}\" , 1)"),
            "{out}"
        );
        assert!(
            out.contains(":: harness :: __capture_eprint ! (\"b\")"),
            "{out}"
        );
        assert!(out.contains("std :: println ! (\"kept\")"), "{out}");
        assert!(out.contains("x . println ! ()"), "{out}");
        assert!(out.contains("let println = 3"), "{out}");
    }

    fn error_of(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        match expand(attr, item) {
            Ok(ts) => panic!("expanded: {ts}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn matrix_expands_with_typed_parameters() {
        let out = expand(
            quote!(cluster = "etcd3", matrix(nodes = [3, 5], mode = ["a", "b"])),
            quote!(
                async fn t(cluster: &Cluster, nodes: u32, mode: &str) -> TestResult {
                    Ok(())
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(
            out.contains(". matrix (& [:: harness :: Axis { name : \"nodes\""),
            "{out}"
        );
        assert!(out.contains("let _ : u32 = 5"), "{out}");
        assert!(
            out.contains("t (& cluster , __matrix_nodes , __matrix_mode)"),
            "{out}"
        );
    }

    #[test]
    fn walk_definitions_expand_and_their_mistakes_are_compile_errors() {
        let f = quote!(
            fn cache() -> Walks<Model> {
                Walks::new(Model::default())
            }
        );
        let out = expand_walk(quote!(cluster = "redis3", timeout = "1m"), f.clone())
            .unwrap()
            .to_string();
        assert!(
            out.contains("TestBody :: Walks (__cluster_walk_plan)"),
            "{out}"
        );
        assert!(out.contains(". timeout_ms (60000u64)"), "{out}");
        let err = |attr, item| match expand_walk(attr, item) {
            Ok(ts) => panic!("expanded: {ts}"),
            Err(e) => e.to_string(),
        };
        assert!(err(quote!(), f.clone()).contains("walks run on a cluster"));
        assert!(err(quote!(nodes = 1, nodes = 2), f.clone())
            .contains("`nodes` is given more than once"));
        assert!(err(quote!(nodes = 1, ignore, ignore), f.clone())
            .contains("`ignore` is given more than once"));
        assert!(err(quote!(nodes = 1, retries = 2), f.clone()).contains("not retried"));
        assert!(err(quote!(nodes = 1, share = "g"), f.clone()).contains("already share"));
        assert!(err(quote!(nodes = 1, matrix(a = [1])), f.clone()).contains("no `matrix`"));
        let asy = quote!(
            async fn cache() -> Walks<Model> {
                todo!()
            }
        );
        assert!(err(quote!(nodes = 1), asy).contains("plain `fn`"));
        let args = quote!(
            fn cache(x: u32) -> Walks<Model> {
                todo!()
            }
        );
        assert!(err(quote!(nodes = 1), args).contains("takes no parameters"));
    }

    #[test]
    fn matrix_mistakes_are_compile_errors() {
        let f = quote!(
            async fn t(cluster: &Cluster, size: u32) -> TestResult {
                Ok(())
            }
        );
        let e = error_of(quote!(cluster = "etcd3", matrix(nodes = [3])), f);
        assert!(
            e.contains("`size` is not an axis of the matrix (axes: nodes)"),
            "{e}"
        );
        let f = quote!(
            async fn t() -> TestResult {
                Ok(())
            }
        );
        let e = error_of(quote!(matrix(nodes = [3])), f.clone());
        assert!(e.contains("sizes the cluster"), "{e}");
        let e = error_of(quote!(matrix(a = [1, "x"])), f.clone());
        assert!(e.contains("mixes integer and string"), "{e}");
        let e = error_of(quote!(matrix(a = [1, 1])), f.clone());
        assert!(e.contains("twice"), "{e}");
        let e = error_of(quote!(matrix(a = ["x,y"])), f.clone());
        assert!(e.contains("without spaces"), "{e}");
        let e = error_of(quote!(matrix(a = [])), f);
        assert!(e.contains("no values"), "{e}");
    }
}
