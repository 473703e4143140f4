with

source as (

    select * from {{ source('graph', 'users') }}

),

renamed as (

    select

        ---------- ids
        id as user_id,

        ---------- addresses
        nullif(trim(mail), '') as mail,
        nullif(trim("userPrincipalName"), '') as user_principal_name,
        nullif(lower(trim(mail)), '') as mail_lower,
        nullif(lower(trim("userPrincipalName")), '') as upn_lower,

        ---------- text
        "displayName" as display_name,

        ---------- load metadata
        _loaded_at as loaded_at

    from source

)

select * from renamed
