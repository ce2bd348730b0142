mod store_domain;
