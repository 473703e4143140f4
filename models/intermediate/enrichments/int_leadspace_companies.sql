with

answers as (

    select * from {{ ref('stg_leadspace__companies') }}

),

accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

current_accounts as (

    -- accounts removed from the CRM snapshot since they were sent are left out
    select
        answers.account_id,
        answers.leadspace_company_id,
        answers.request_id,
        answers.record_status,
        answers.enrichment_status,
        answers.error,
        answers.is_enriched,
        answers.company_name,
        answers.website,
        answers.industry,
        answers.sub_industry,
        answers.sic,
        answers.naics,
        answers.employee_count,
        answers.employee_range,
        answers.revenue_usd,
        answers.revenue_range,
        answers.country,
        answers.state,
        answers.city,
        answers.match_confidence,
        answers.run_id,
        answers.answered_at
    from answers
    inner join accounts
        on answers.account_id = accounts.account_id

)

select * from current_accounts
