{#- The CRM's accounts, from the staging model of the CRM the var `crm_source` names (the
    only one enabled): every model downstream reads this one, whichever the CRM. -#}
{%- set crm_models = {
    'file': 'stg_crm__file_accounts',
    'salesforce': 'stg_salesforce__accounts',
    'hubspot': 'stg_hubspot__accounts',
    'dataverse': 'stg_dataverse__accounts',
} -%}
{%- if var('crm_source') not in crm_models -%}
    {{ exceptions.raise_compiler_error(
        "The var crm_source is '" ~ var('crm_source')
        ~ "', not one of file, salesforce, hubspot, dataverse.") }}
{%- endif %}

with

accounts as (

    select * from {{ ref(crm_models[var('crm_source')]) }}

)

select * from accounts
