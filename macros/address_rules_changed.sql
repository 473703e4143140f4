{#- address_rules_changed(current_rules) -> a boolean expression for the models that hold
    accounts and are rebuilt by whole days: true when `current_rules` (int_address_rules'
    fingerprint of the address rules) differs from the one this model's rows were built
    under, and on a full build; such a build rewrites every day (docs/incremental_models.md,
    "Address rules"). -#}
{%- macro address_rules_changed(current_rules) -%}
    {%- if is_incremental() -%}
        {{ current_rules }} <> coalesce(
            (select max(built.address_rules) as built_rules from {{ this }} as built), ''
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro -%}
