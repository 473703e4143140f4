with

org_mailboxes as (

    select * from {{ ref('int_org_mailboxes') }}

),

final as (

    select
        cast(user_id as {{ dbt.type_string() }}) as "UserId",
        cast(mail as {{ dbt.type_string() }}) as "Mail",
        cast(user_principal_name as {{ dbt.type_string() }}) as "UserPrincipalName",
        cast(display_name as {{ dbt.type_string() }}) as "DisplayName"
    from org_mailboxes

)

select * from final
