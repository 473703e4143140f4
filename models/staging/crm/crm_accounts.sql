{#- The staged accounts of whichever CRM the var `crm_source` names, with the column names of
    the CRM file (`name`, not `account_name`): what `python -m loaders leadspace` reads, after
    `dbt run -s +crm_accounts`, when no file CRM is landed in raw_crm, so that its `--map
    company_name=name,website=website,location=city` means the same for every CRM. -#}
with

accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

final as (

    select
        account_id,
        -- the CRM file's column name, a keyword to sqlfluff only
        account_name as name,  -- noqa: RF04
        website,
        city,
        country
    from accounts

)

select * from final
