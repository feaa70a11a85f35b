//! The gRPC edge of users: `crm.permission.v1.UserService` (accounts, profiles, the
//! organisation's settings). Converts wire types into validated domain values (all violations
//! of a request reported at once) and domain results back; who may call what is checked here
//! ([`crate::actor`]). Passwords go straight into `SecretString`s and are never logged.

use crm_proto::permission as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::domain::{self, NewUser, OrgSettings, OrgSettingsPatch, ProfilePatch, User, UserStatus};
use super::service::Users;
use crate::validation::Violations;
use crate::wire::{GrpcResult, timestamp};

impl From<UserStatus> for pb::UserStatus {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => pb::UserStatus::Active,
            UserStatus::Disabled => pb::UserStatus::Disabled,
        }
    }
}

/// A status to set: UNSPECIFIED and unknown numbers are violations.
pub fn status(v: &mut Violations, field: &str, raw: i32) -> UserStatus {
    match pb::UserStatus::try_from(raw) {
        Ok(pb::UserStatus::Active) => UserStatus::Active,
        Ok(pb::UserStatus::Disabled) => UserStatus::Disabled,
        Ok(pb::UserStatus::Unspecified) | Err(_) => {
            v.add(field, "must be USER_STATUS_ACTIVE or USER_STATUS_DISABLED");
            UserStatus::Active
        }
    }
}

/// A user as answered: with the values that apply to them (their own, else `org`'s).
fn user_pb(u: User, org: &OrgSettings) -> pb::User {
    let effective = u.effective(org);
    pb::User {
        id: u.id.to_string(),
        username: u.username,
        display_name: u.display_name,
        email: u.email.unwrap_or_default(),
        status: pb::UserStatus::from(u.status) as i32,
        version: u.version,
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
        time_zone: u
            .time_zone
            .map(|tz| tz.name().to_string())
            .unwrap_or_default(),
        locale: u.locale.map(|l| l.as_str().to_string()).unwrap_or_default(),
        effective_time_zone: effective.time_zone.name().to_string(),
        effective_locale: effective.locale.as_str().to_string(),
    }
}

impl From<OrgSettings> for pb::OrgSettings {
    fn from(s: OrgSettings) -> Self {
        pb::OrgSettings {
            default_time_zone: s.default_time_zone.name().to_string(),
            default_locale: s.default_locale.as_str().to_string(),
            version: s.version,
            updated_at: Some(timestamp(s.updated_at)),
        }
    }
}

fn parse_id(raw: &str) -> Result<Uuid, Status> {
    let mut v = Violations::default();
    let id = v.uuid("id", raw).unwrap_or_default();
    v.into_result()?;
    Ok(id)
}

pub struct UserApi {
    users: Users,
}

impl UserApi {
    pub fn new(users: Users) -> Self {
        Self { users }
    }

    /// The answer for `user`, with its effective time zone and language.
    async fn answer(&self, user: User) -> GrpcResult<pb::User> {
        let org = self.users.org_settings().await?;
        Ok(Response::new(user_pb(user, &org)))
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for UserApi {
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> GrpcResult<pb::User> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let new = NewUser::parse(&r.username, &r.display_name, &r.email, &r.password)?;
            self.answer(self.users.create_user(new).await?).await
        })
        .await
    }

    /// The gateway asks as itself (a token's user still active?); a user may read their own
    /// record; reading anyone else's needs an organisation grant (READ, or UPDATE for the read
    /// before a change).
    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> GrpcResult<pb::User> {
        let caller = crate::actor::caller(&request);
        let id = parse_id(&request.get_ref().id)?;
        crate::actor::scoped_or_self(
            caller,
            id,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move { self.answer(self.users.get_user(id).await?).await },
        )
        .await
    }

    async fn set_user_status(
        &self,
        request: Request<pb::SetUserStatusRequest>,
    ) -> GrpcResult<pb::User> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.uuid("id", &r.id).unwrap_or_default();
            let status = status(&mut v, "status", r.status);
            let expected = v.version("expected_version", r.expected_version);
            v.into_result()?;
            self.answer(self.users.set_status(id, status, expected).await?)
                .await
        })
        .await
    }

    async fn update_user_profile(
        &self,
        request: Request<pb::UpdateUserProfileRequest>,
    ) -> GrpcResult<pb::User> {
        let caller = crate::actor::caller(&request);
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = v.uuid("id", &r.id);
        let expected = v.version("expected_version", r.expected_version);
        // Every bad field in one answer: the id and version first, then the profile's own.
        let patch = match ProfilePatch::parse(
            r.display_name.as_deref(),
            r.time_zone.as_deref(),
            r.locale.as_deref(),
        ) {
            Ok(patch) => Some(patch),
            Err(err) => {
                v.extend(err.violations);
                None
            }
        };
        // Without a valid id there is nobody to authorise against: report the input. With one,
        // who may change the profile is decided before the input is judged, so a caller who may
        // not learns nothing from the answer.
        let Some(id) = id else {
            v.into_result()?;
            return Err(Status::internal(
                "unreachable: an invalid id is a violation",
            ));
        };
        crate::actor::scoped_or_self(caller, id, &[crm_access::Action::Update], async move {
            v.into_result()?;
            let patch = patch.unwrap_or_default();
            self.answer(self.users.update_profile(id, patch, expected).await?)
                .await
        })
        .await
    }

    async fn get_org_settings(
        &self,
        request: Request<pb::GetOrgSettingsRequest>,
    ) -> GrpcResult<pb::OrgSettings> {
        let caller = crate::actor::caller(&request);
        // READ, or UPDATE for the read before a change.
        crate::actor::scoped_any(
            caller,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move { Ok(Response::new(self.users.org_settings().await?.into())) },
        )
        .await
    }

    async fn update_org_settings(
        &self,
        request: Request<pb::UpdateOrgSettingsRequest>,
    ) -> GrpcResult<pb::OrgSettings> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let expected = v.version("expected_version", r.expected_version);
            let patch = match OrgSettingsPatch::parse(
                r.default_time_zone.as_deref(),
                r.default_locale.as_deref(),
            ) {
                Ok(patch) => Some(patch),
                Err(err) => {
                    v.extend(err.violations);
                    None
                }
            };
            v.into_result()?;
            let settings = self
                .users
                .update_org_settings(patch.unwrap_or_default(), expected)
                .await?;
            Ok(Response::new(settings.into()))
        })
        .await
    }

    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> GrpcResult<pb::SetPasswordResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.uuid("id", &r.id).unwrap_or_default();
            let password = domain::password(&mut v, "password", &r.password);
            v.into_result()?;
            self.users.set_password(id, password).await?;
            Ok(Response::new(pb::SetPasswordResponse {}))
        })
        .await
    }
}
