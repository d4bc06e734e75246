//! Staff management rules, shared by the dashboard, the JSON API and the CLI.

use crate::error::Error;
use app::model::staff::{parse_email, Role, Staff};

use crate::auth::password;
use crate::db::audit::Actor;
use crate::db::staff::AddStaffError;
use crate::db::Db;

/// Every staff account, active and disabled.
pub async fn list(db: &Db) -> Result<Vec<Staff>, Error> {
    db.list_staff().await.map_err(|e| Error::internal("listing staff", e))
}

/// Adds an account after checking every field; errors name the field.
pub async fn add(
    db: &Db,
    actor: &Actor,
    email: &str,
    role: Role,
    new_password: String,
) -> Result<Staff, Error> {
    let email = parse_email(email).map_err(|m| Error::invalid("email", m))?;
    password::check_new_password(&new_password).map_err(|m| Error::invalid("password", m))?;
    let hash = password::hash(new_password).await;
    db.add_staff(actor, &email, role, &hash).await.map_err(|e| match e {
        AddStaffError::EmailTaken => Error::invalid("email", "a staff member with this email already exists"),
        AddStaffError::Database(e) => Error::internal("adding a staff member", e),
    })
}

/// Disables an account. Nobody disables their own (ask another admin), and the last active
/// admin stays, so the product can always be administered.
pub async fn disable(db: &Db, actor: &Actor, id: i64) -> Result<Staff, Error> {
    if actor.staff_id == Some(id) {
        return Err(Error::invalid("staff_id", "you cannot disable your own account; ask another admin"));
    }
    let internal = |e| Error::internal("disabling a staff member", e);
    let target =
        db.staff_by_id(id).await.map_err(internal)?.ok_or_else(|| Error::NotFound(format!("staff {id}")))?;
    if target.role == Role::Admin && target.disabled_at.is_none() {
        let active_admins = db
            .list_staff()
            .await
            .map_err(internal)?
            .iter()
            .filter(|s| s.role == Role::Admin && s.disabled_at.is_none())
            .count();
        if active_admins <= 1 {
            return Err(Error::invalid("staff_id", "this is the last active admin"));
        }
    }
    db.disable_staff(actor, id).await.map_err(internal)?.ok_or_else(|| Error::NotFound(format!("staff {id}")))
}
