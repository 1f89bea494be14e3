package console

// The owner's switch "members may create and revoke keys" (docs/console.md
// §9): an account setting, enforced on every key route by
// req.mayManageKeys, and audited (who, before, after) in the same
// transaction as the change.

import (
	"net/http"

	"github.com/glmkit/glmkit/platform"
)

// membersSwitch fills in the keys page's switch for the account's owner.
func (c *Console) membersSwitch(q *req, d *keysData) error {
	if q.user.Role != platform.RoleOwner {
		return nil
	}
	st, err := c.o.Store.AccountSettings(q.r.Context(), q.account.ID)
	if err != nil {
		return err
	}
	d.Owner, d.MembersManage = true, st.MembersManageKeys
	return nil
}

// setMembers is the owner's switch. Only the owner may flip it; a member
// or an operator gets 403.
func (c *Console) setMembers(q *req) error {
	if q.user.Role != platform.RoleOwner {
		return errForbidden
	}
	on := q.r.PostFormValue("members_manage_keys") == "on"
	before, err := c.o.Store.SetMembersManageKeys(q.r.Context(), q.account.ID, on, q.user.Email, c.now())
	if err != nil {
		return err
	}
	c.log.Info("console: member key permission set", "account", q.account.ID, "by", q.user.Email,
		"before", before, "after", on)
	http.Redirect(q.w, q.r, Prefix+"/keys?saved=1", http.StatusSeeOther)
	return nil
}
