use crm_proto::customer as pb;

use crate::helpers::{OWNER, account_request, spawn_app, violated_fields};

#[tokio::test]
async fn filters_sorting_and_cursor_pages() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let other_owner = "0191d3a0-0000-7000-8000-0000000000bb";
    let mut names = Vec::new();
    for i in 0..7 {
        let mut req = account_request(&format!("Company {i:02}"));
        if i % 2 == 1 {
            req.tags = vec!["erp".into()];
            req.owner_id = other_owner.into();
            req.lifecycle_status = pb::LifecycleStatus::Active as i32;
        }
        if i == 3 {
            req.email = "boss@umbrella.example".into();
        }
        names.push(client.create_account(req).await.unwrap().into_inner().name);
    }

    // Pages of 3 by name, descending, walk every row exactly once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_accounts(pb::ListAccountsRequest {
                page_size: 3,
                page_token: token.clone(),
                sort: pb::SortField::Name as i32,
                descending: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.accounts.len() <= 3);
        seen.extend(page.accounts.into_iter().map(|a| a.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = names.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected);

    let lister = client.clone();
    let list = |req: pb::ListAccountsRequest| {
        let mut client = lister.clone();
        async move {
            client
                .list_accounts(req)
                .await
                .unwrap()
                .into_inner()
                .accounts
                .len()
        }
    };
    assert_eq!(
        list(pb::ListAccountsRequest {
            tag: "erp".into(),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(pb::ListAccountsRequest {
            owner_id: OWNER.into(),
            ..Default::default()
        })
        .await,
        4
    );
    assert_eq!(
        list(pb::ListAccountsRequest {
            lifecycle_status: pb::LifecycleStatus::Active as i32,
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(pb::ListAccountsRequest {
            query: "UMBRELLA".into(),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        list(pb::ListAccountsRequest {
            query: "138 0013".into(),
            ..Default::default()
        })
        .await,
        7
    );
    assert_eq!(
        list(pb::ListAccountsRequest {
            query: "%".into(),
            ..Default::default()
        })
        .await,
        0,
        "LIKE wildcards are literal"
    );

    // Deleted rows leave lists.
    let first = client
        .list_accounts(pb::ListAccountsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .accounts
        .remove(0);
    client
        .delete_account(pb::DeleteAccountRequest {
            id: first.id,
            expected_version: 0,
        })
        .await
        .unwrap();
    assert_eq!(list(pb::ListAccountsRequest::default()).await, 6);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_list_requests_are_invalid_arguments() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    for _ in 0..3 {
        app.create_account("Acme").await;
    }
    let page = client
        .list_accounts(pb::ListAccountsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let cases = [
        (
            pb::ListAccountsRequest {
                page_size: 500,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListAccountsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListAccountsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        // A token is bound to the sort and filters it was issued for.
        (
            pb::ListAccountsRequest {
                page_token: page.next_page_token.clone(),
                sort: pb::SortField::Name as i32,
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListAccountsRequest {
                page_token: page.next_page_token.clone(),
                tag: "vip".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListAccountsRequest {
                owner_id: "bob".into(),
                ..Default::default()
            },
            "owner_id",
        ),
        (
            pb::ListAccountsRequest {
                sort: 99,
                ..Default::default()
            },
            "sort",
        ),
        (
            pb::ListAccountsRequest {
                lifecycle_status: 99,
                ..Default::default()
            },
            "lifecycle_status",
        ),
    ];
    for (request, field) in cases {
        let err = client.list_accounts(request).await.unwrap_err();
        assert_eq!(violated_fields(&err), [field]);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn contacts_filter_by_account() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let acme = app.create_account("Acme").await;
    let globex = app.create_account("Globex").await;
    app.create_contact(&acme.id, "Ada").await;
    app.create_contact(&acme.id, "Grace").await;
    app.create_contact(&globex.id, "Linus").await;
    let page = client
        .list_contacts(pb::ListContactsRequest {
            account_id: acme.id.clone(),
            sort: pb::SortField::Name as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = page
        .contacts
        .iter()
        .map(|c| c.first_name.as_str())
        .collect();
    assert_eq!(names, ["Ada", "Grace"]);
    app.shutdown().await;
}
