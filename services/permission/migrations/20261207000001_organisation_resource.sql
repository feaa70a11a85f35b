-- Grants and field rules may name the organisation itself (administration through the gateway).
ALTER TABLE role_grants DROP CONSTRAINT role_grants_resource_check;
ALTER TABLE role_grants ADD CONSTRAINT role_grants_resource_check
    CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket', 'audit',
                        'organisation'));
ALTER TABLE role_field_rules DROP CONSTRAINT role_field_rules_resource_check;
ALTER TABLE role_field_rules ADD CONSTRAINT role_field_rules_resource_check
    CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket', 'audit',
                        'organisation'));
