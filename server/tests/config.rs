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
