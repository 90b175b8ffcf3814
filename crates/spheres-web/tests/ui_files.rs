//! The web interface's files, without a browser: every file of `ui/` is served as it is on
//! disk with its type, every module the page imports is served, every language has the same
//! strings, every string the page asks for exists, and the event types the page lists in
//! `KNOWN_EVENTS` are the ones it subscribes to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use spheres_web::UI_FILES;
use tower::ServiceExt;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// The files under `dir`, as paths relative to it with `/` between folders.
fn files_under(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if entry.file_type().unwrap().is_dir() {
            files_under(&entry.path(), &format!("{rel}/"), out);
        } else {
            out.push(rel);
        }
    }
}

fn ui_files_on_disk() -> Vec<String> {
    let mut out = Vec::new();
    files_under(&ui_dir(), "", &mut out);
    out.sort();
    out
}

/// Where a file of `ui/` is served: the page at `/`, its script and style at the root, the
/// rest under `/ui/` at the same path.
fn url_of(rel: &str) -> String {
    match rel {
        "index.html" => "/".to_string(),
        "app.js" | "app.css" => format!("/{rel}"),
        _ => format!("/ui/{rel}"),
    }
}

fn served() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    let mut table = BTreeMap::new();
    for &(path, body, kind) in UI_FILES {
        assert!(
            table.insert(path, (body, kind)).is_none(),
            "{path} is twice in UI_FILES"
        );
    }
    table
}

fn js_files() -> Vec<(String, String)> {
    ui_files_on_disk()
        .into_iter()
        .filter(|rel| rel.ends_with(".js"))
        .map(|rel| {
            let text = std::fs::read_to_string(ui_dir().join(&rel)).unwrap();
            (rel, text)
        })
        .collect()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(ui_dir().join(rel)).unwrap()
}

#[test]
fn every_file_of_ui_is_served_as_it_is_on_disk() {
    let table = served();
    let on_disk = ui_files_on_disk();
    let expected: BTreeSet<String> = on_disk.iter().map(|rel| url_of(rel)).collect();
    let got: BTreeSet<String> = table.keys().map(|p| p.to_string()).collect();
    assert_eq!(
        got, expected,
        "UI_FILES must list every file of ui/, and only those"
    );
    for rel in &on_disk {
        let (body, _) = table[url_of(rel).as_str()];
        assert_eq!(body, read(rel), "{rel} is served with other contents");
    }
}

/// The type a file must be served with, from its name.
fn type_of(path: &str) -> &'static str {
    if path == "/" {
        "text/html; charset=utf-8"
    } else if path.ends_with(".js") {
        "text/javascript; charset=utf-8"
    } else if path.ends_with(".json") {
        "application/json"
    } else if path.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        panic!("{path}: a file of a kind the page has no type for")
    }
}

#[tokio::test]
async fn each_file_is_served_with_its_type_and_nothing_else_is() {
    let router = spheres_web::ui_router();
    for &(path, body, _) in UI_FILES {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(value(header::CONTENT_TYPE), Some(type_of(path)), "{path}");
        assert_eq!(value(header::CACHE_CONTROL), Some("no-cache"), "{path}");
        assert_eq!(
            value(header::X_CONTENT_TYPE_OPTIONS),
            Some("nosniff"),
            "{path}"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&bytes[..], body.as_bytes(), "{path}");
    }
    for path in [
        "/index.html",
        "/ui/app.js",
        "/ui/nothing.js",
        "/ui/views/",
        "/ui/i18n/de.json",
        "/ui/i18n/",
        "/app.js.map",
        "/ui/views/home.js/x",
    ] {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// The module specifiers of a script's static imports and re-exports (`import … from "x"`,
/// `import "x"`, `export … from "x"`, over one or more lines) and dynamic `import("x")`.
fn imports_of(js: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut statement = String::new();
    for line in js.lines() {
        let line = line.trim();
        let starts = line.starts_with("import ")
            || line.starts_with("import{")
            || (line.starts_with("export ") && line.contains(" from "));
        if statement.is_empty() && !starts {
            continue;
        }
        statement.push_str(line);
        statement.push(' ');
        // A statement ends with its specifier: `from "x";` or `import "x";`.
        let tail = statement
            .rfind(" from \"")
            .map(|i| i + " from \"".len())
            .or_else(|| {
                statement
                    .strip_prefix("import \"")
                    .map(|_| "import \"".len())
            });
        if let Some(start) = tail {
            let end = statement[start..]
                .find('"')
                .expect("an import's specifier ends on its line");
            out.push(statement[start..start + end].to_string());
            statement.clear();
        }
    }
    assert!(
        statement.is_empty(),
        "an import statement never ends: {statement}"
    );
    // Dynamic imports, outside comments (JSDoc types say `import("...")` too, for tsc only).
    let code = without_comments(js);
    let mut rest = code.as_str();
    while let Some(i) = rest.find("import(") {
        rest = &rest[i + "import(".len()..];
        let literal = rest
            .strip_prefix('"')
            .expect("dynamic imports name their module literally, so this test can check it");
        out.push(literal[..literal.find('"').unwrap()].to_string());
    }
    out
}

/// `js` without its block comments and whole-line `//` comments.
fn without_comments(js: &str) -> String {
    let mut out = String::new();
    let mut rest = js;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A specifier as the browser resolves it against the URL of the module that imports it.
fn resolve(importer: &str, specifier: &str) -> String {
    if specifier.starts_with('/') {
        return specifier.to_string();
    }
    assert!(
        specifier.starts_with("./") || specifier.starts_with("../"),
        "{importer} imports {specifier:?}: a bare name needs an import map, and there is none"
    );
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop(); // the importer's own name
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                assert!(parts.len() > 1, "{importer} imports {specifier} above /");
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

#[test]
fn every_module_the_page_imports_is_served_and_every_served_module_is_used() {
    let table = served();
    // The page's own references: its script and style.
    let page = table["/"].0;
    let mut referenced = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = page;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let value = &rest[..rest.find('"').unwrap()];
            if value.starts_with('/') {
                referenced.push(value.to_string());
            }
        }
    }
    assert!(
        referenced.contains(&"/app.js".to_string()),
        "the page loads /app.js: {referenced:?}"
    );
    assert!(
        page.contains("<script type=\"module\" src=\"/app.js\"></script>"),
        "/app.js is loaded as a module"
    );
    for path in &referenced {
        assert!(
            table.contains_key(path.as_str()),
            "the page uses {path}, which is not served"
        );
    }
    // Every module reachable from /app.js, or from a link page's script and its service
    // worker (loaded by the node's link pages, the worker also at /l/sw.js), is served; and
    // every served module is reachable.
    assert_eq!(
        table["/ui/link/sw.js"].0,
        spheres_web::LINK_WORKER,
        "the link pages' worker is the one in ui/link/"
    );
    let mut seen = BTreeSet::new();
    let mut todo = vec![
        "/app.js".to_string(),
        "/ui/link/viewer.js".to_string(),
        "/ui/link/sw.js".to_string(),
    ];
    while let Some(module) = todo.pop() {
        if !seen.insert(module.clone()) {
            continue;
        }
        let (body, _) = table
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} is imported but not served"));
        for specifier in imports_of(body) {
            let url = resolve(&module, &specifier);
            assert!(
                table.contains_key(url.as_str()),
                "{module} imports {specifier} ({url}), which is not served"
            );
            todo.push(url);
        }
    }
    let modules: BTreeSet<String> = table
        .keys()
        .filter(|p| p.ends_with(".js"))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        seen, modules,
        "a served module that nothing imports is dead code"
    );
}

#[test]
fn imports_are_found_and_resolved_as_a_browser_would() {
    let js = "import { a } from \"./a.js\";\nimport {\n  b,\n  c,\n} from \"../b.js\";\nimport \"/c.js\";\nexport { d } from \"./d.js\";\nconst e = await import(\"./e.js\");\n// from \"nowhere\"\n";
    assert_eq!(
        imports_of(js),
        ["./a.js", "../b.js", "/c.js", "./d.js", "./e.js"]
    );
    assert_eq!(resolve("/ui/views/home.js", "../api.js"), "/ui/api.js");
    assert_eq!(resolve("/ui/api.js", "./dom.js"), "/ui/dom.js");
    assert_eq!(resolve("/app.js", "/ui/api.js"), "/ui/api.js");
    assert_eq!(resolve("/app.js", "./ui/api.js"), "/ui/api.js");
}

// ---------- Strings ----------

const PLURAL_CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// The {placeholders} of a string.
fn placeholders(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(end) = rest.find('}') {
            let name = &rest[..end];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// One string of a language: its plural categories (none for a plain string) and the
/// placeholders of all its forms.
#[derive(Debug, PartialEq)]
struct Shape {
    plural: Option<BTreeSet<String>>,
    placeholders: BTreeSet<String>,
}

fn shape(lang: &str, key: &str, value: &Value) -> Shape {
    match value {
        Value::String(s) => Shape {
            plural: None,
            placeholders: placeholders(s),
        },
        Value::Object(forms) => {
            let mut all = BTreeSet::new();
            for (category, form) in forms {
                assert!(
                    PLURAL_CATEGORIES.contains(&category.as_str()),
                    "{lang}.json {key}: {category:?} is not a plural category (Intl.PluralRules)"
                );
                let form = form
                    .as_str()
                    .unwrap_or_else(|| panic!("{lang}.json {key}.{category} is not a string"));
                all.extend(placeholders(form));
            }
            assert!(
                forms.contains_key("other"),
                "{lang}.json {key}: a plural needs \"other\""
            );
            assert!(
                all.contains("n"),
                "{lang}.json {key}: a plural counts {{n}}"
            );
            Shape {
                plural: Some(forms.keys().cloned().collect()),
                placeholders: all,
            }
        }
        _ => panic!("{lang}.json {key}: a string or an object of plural forms"),
    }
}

/// Every language file: its code and its strings.
fn languages() -> BTreeMap<String, serde_json::Map<String, Value>> {
    let dir = ui_dir().join("i18n");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let code = name
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("ui/i18n/{name}: only LANG.json files belong here"));
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("ui/i18n/{name} is not JSON: {e}"));
        let Value::Object(strings) = value else {
            panic!("ui/i18n/{name} is not an object of strings")
        };
        out.insert(code.to_string(), strings);
    }
    out
}

#[test]
fn every_language_has_the_same_strings_in_the_same_shape() {
    let langs = languages();
    let en = langs.get("en").expect("English is the reference");
    assert!(langs.len() >= 2, "English and at least one other language");
    let reference: BTreeMap<&String, Shape> =
        en.iter().map(|(k, v)| (k, shape("en", k, v))).collect();
    for (code, strings) in &langs {
        let keys: BTreeSet<&String> = strings.keys().collect();
        let expected: BTreeSet<&String> = reference.keys().copied().collect();
        let missing: Vec<_> = expected.difference(&keys).collect();
        let extra: Vec<_> = keys.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{code}.json: missing {missing:?}, not in en.json {extra:?}"
        );
        for (key, value) in strings {
            let got = shape(code, key, value);
            let want = &reference[key];
            assert_eq!(
                got.plural.is_some(),
                want.plural.is_some(),
                "{code}.json {key}: a plural in one language is a plural in all"
            );
            assert_eq!(
                got.placeholders, want.placeholders,
                "{code}.json {key}: the same placeholders as in English"
            );
            // English and French both have "one" and "other" (and French's "many", for
            // millions, falls back to "other"). A language with other rules (Polish, Arabic)
            // will need its own categories here.
            assert_eq!(
                got.plural, want.plural,
                "{code}.json {key}: the same plural categories as in English"
            );
        }
    }
}

#[test]
fn the_language_switch_offers_exactly_the_languages_there_are() {
    let page = read("index.html");
    let switch = &page[page.find("<select id=\"lang\">").expect("the switch")..];
    let switch = &switch[..switch.find("</select>").unwrap()];
    let mut offered = BTreeSet::new();
    let mut rest = switch;
    while let Some(i) = rest.find("<option value=\"") {
        rest = &rest[i + "<option value=\"".len()..];
        offered.insert(rest[..rest.find('"').unwrap()].to_string());
    }
    let files: BTreeSet<String> = languages().into_keys().collect();
    assert_eq!(offered, files);
}

/// Whether `c` may end a name or a member access (so `on(` in `json(` or `x.on(` is not ours).
fn ends_a_name(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
}

/// The string literals in `text` right after `marker`, which ends with an opening `"`. With
/// `alone`, only where the marker does not continue a name (`t("` but not `split("`).
fn literals_after(text: &str, marker: &str, alone: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + marker.len()..];
        if alone && ends_a_name(before) {
            continue;
        }
        out.push(rest[..rest.find('"').unwrap()].to_string());
    }
    out
}

// The states of a share (docs/api.md), shown as t(`state_${state}`).
const SHARE_STATES: [&str; 6] = [
    "hashing",
    "downloading",
    "seeding",
    "available",
    "withdrawn",
    "failed",
];

// What an import did not do (docs/api.md, `not_done`), shown as t(`notDone_${kind}`).
const NOT_DONE_KINDS: [&str; 7] = [
    "contact",
    "member_of",
    "sphere",
    "invite",
    "file",
    "post",
    "comments",
];

#[test]
fn every_string_the_page_asks_for_exists_and_every_string_is_asked_for() {
    let langs = languages();
    let en = &langs["en"];
    let page = read("index.html");
    let mut used: Vec<(String, String)> = Vec::new();
    for (rel, js) in js_files() {
        for key in literals_after(&js, "t(\"", true) {
            used.push((rel.clone(), key));
        }
    }
    for attr in ["data-i18n=\"", "data-i18n-label=\""] {
        let mut rest = page.as_str();
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            used.push(("index.html".into(), rest[..rest.find('"').unwrap()].into()));
        }
    }
    for state in SHARE_STATES {
        used.push(("views/sphere.js".into(), format!("state_{state}")));
    }
    for kind in NOT_DONE_KINDS {
        used.push(("views/settings.js".into(), format!("notDone_{kind}")));
    }
    assert!(
        used.len() > 50,
        "the search finds the page's strings: {used:?}"
    );
    for (file, key) in &used {
        assert!(
            en.contains_key(key),
            "{file} asks for {key:?}, not in en.json"
        );
    }
    let used: BTreeSet<&String> = used.iter().map(|(_, k)| k).collect();
    let unused: Vec<&String> = en.keys().filter(|k| !used.contains(k)).collect();
    assert!(unused.is_empty(), "strings nothing asks for: {unused:?}");
}

// ---------- Events ----------

/// The double-quoted literals of a list such as `["a", "b"]` (or one literal `"a"`), at the
/// start of `text`.
fn quoted_list(text: &str) -> Option<Vec<String>> {
    let text = text.trim_start();
    let inner = if let Some(list) = text.strip_prefix('[') {
        &list[..list.find(']')?]
    } else if let Some(rest) = text.strip_prefix('"') {
        &text[..rest.find('"')? + 2]
    } else {
        return None;
    };
    inner
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.strip_prefix('"')?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .collect()
}

/// `KNOWN_EVENTS` as events.js declares it: one line, which the node's own test reads too.
fn known_events() -> Vec<String> {
    let js = read("events.js");
    let prefix = "export const KNOWN_EVENTS = [";
    let lines: Vec<&str> = js.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(lines.len(), 1, "one line declares KNOWN_EVENTS");
    let line = lines[0];
    assert!(line.ends_with("];"), "KNOWN_EVENTS is on one line: {line}");
    quoted_list(&line["export const KNOWN_EVENTS = ".len()..])
        .unwrap_or_else(|| panic!("KNOWN_EVENTS lists string literals only: {line}"))
}

#[test]
fn known_events_are_exactly_the_types_the_page_subscribes_to() {
    let known = known_events();
    let unique: BTreeSet<&String> = known.iter().collect();
    assert_eq!(unique.len(), known.len(), "KNOWN_EVENTS has a duplicate");
    for required in ["tick", "resync", "connection"] {
        assert!(unique.contains(&required.to_string()), "{required}");
    }
    let mut subscribed = BTreeSet::new();
    for (rel, js) in js_files() {
        // A link page's modules speak to WebRTC peers and a tracker, not to the node's events.
        if rel.starts_with("link/") {
            continue;
        }
        let mut rest = js.as_str();
        while let Some(i) = rest.find("on(") {
            let before = &rest[..i];
            rest = &rest[i + "on(".len()..];
            // Not another name's end, not its definition, not a mention in prose: `on()`.
            if ends_a_name(before.chars().next_back())
                || before.ends_with("function ")
                || rest.starts_with(')')
            {
                continue;
            }
            let types = quoted_list(rest).unwrap_or_else(|| {
                panic!(
                    "{rel}: on(...) names its event types literally, so this test can check them: on({}",
                    rest.chars().take(40).collect::<String>()
                )
            });
            for t in types {
                assert!(
                    unique.contains(&t),
                    "{rel} subscribes to {t:?}, which is not in KNOWN_EVENTS"
                );
                subscribed.insert(t);
            }
        }
        // Types compared by name (`e.type === "x"`) are known too.
        for t in literals_after(&js, "type === \"", false) {
            assert!(
                unique.contains(&t),
                "{rel} compares with {t:?}, not in KNOWN_EVENTS"
            );
        }
    }
    let listed: BTreeSet<String> = known.iter().cloned().collect();
    assert_eq!(
        subscribed, listed,
        "every type in KNOWN_EVENTS is handled somewhere, and only those are subscribed to"
    );
}
