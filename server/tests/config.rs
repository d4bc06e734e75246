//! The binary refuses bad configuration: exit code 2 and a message naming the variable.

mod support;

use support::billing;

#[tokio::test]
async fn each_bad_variable_exits_2_and_names_itself() {
    let cases = [
        ("DATABASE_URL", "mysql://localhost/billing"),
        ("PSP_URL", "not a url"),
        ("PSP_API_KEY", "pk_live_123"),
        ("PSP_SIM_LATENCY_MS", "soon"),
        ("BILLING_TZ", "Europe/Atlantis"),
        ("BILLING_CURRENCY", "DOLLARS"),
        ("LOG_FORMAT", "xml"),
        ("RUST_LOG", "info,[[["),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in cases {
        let output = billing()
            .arg("migrate")
            .current_dir(dir.path())
            .env(variable, value)
            .output()
            .await
            .expect("run billing");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value}: stderr does not name it: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // Nothing was created by a refused command.
    assert!(!dir.path().join("data").exists(), "a rejected configuration must not create the database");
}

#[tokio::test]
async fn unknown_arguments_exit_2() {
    let output = billing().args(["serve", "--adress", "x"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--adress"));
}

#[tokio::test]
async fn help_lists_the_commands_and_the_environment() {
    let output = billing().arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in ["serve", "migrate", "DATABASE_URL", "BILLING_TZ", "exit code 2"] {
        assert!(help.contains(word), "--help should mention {word}: {help}");
    }
}

#[tokio::test]
async fn staff_commands_refuse_bad_values_naming_the_option() {
    let (test_db, db) = support::TestDb::migrated(support::Kind::Sqlite).await;
    let run = |args: &'static [&'static str], stdin: &'static str| {
        let url = test_db.url.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = billing()
                .args(args)
                .env("DATABASE_URL", url)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).await.unwrap();
            child.wait_with_output().await.unwrap()
        }
    };
    for (args, stdin, option) in [
        (
            &["staff", "add", "--email", "not-an-email", "--role", "admin"][..],
            "a long enough password\n",
            "--email",
        ),
        (
            &["staff", "add", "--email", "a@b.example", "--role", "root"][..],
            "a long enough password\n",
            "--role",
        ),
        (&["staff", "add", "--email", "a@b.example", "--role", "admin"][..], "short\n", "--password"),
        (&["staff", "token", "--email", "nobody@b.example"][..], "", "--email"),
        (&["staff", "token", "--email", "nobody@b.example", "--days", "0"][..], "", "--days"),
    ] {
        let output = run(args, stdin).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(option), "{args:?} should name {option}: {stderr}");
    }
    assert_eq!(db.staff_count().await.unwrap(), 0, "nothing was stored");

    let added =
        run(&["staff", "add", "--email", "Ana@B.Example", "--role", "finance"], "a long enough password\n")
            .await;
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let audit = db.audit_page(&app::model::audit::AuditQuery::default()).await.unwrap();
    assert_eq!(audit.entries[0].action, "staff.add");
    assert_eq!(audit.entries[0].actor_kind, "cli", "the CLI is audited with the operating-system user");
    assert!(audit.entries[0].source.starts_with("cli@"));
    let again =
        run(&["staff", "add", "--email", "ana@b.example", "--role", "admin"], "a long enough password\n")
            .await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
