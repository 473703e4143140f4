with

users as (

    select * from {{ ref('stg_graph__users') }}

),

final as (

    select
        user_id,
        mail,
        user_principal_name,
        display_name,
        mail_lower,
        upn_lower,
        loaded_at
    from users

)

select * from final
